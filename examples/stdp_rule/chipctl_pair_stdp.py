"""Pair-based STDP on the chip's correlation sensors: a complete chipctl rule plugin.

Each synapse of a BrainScaleS-2-style chip has a correlation sensor that sums exp(-Δt/τ) over
nearest-neighbour pairs of a presynaptic and a postsynaptic spike: ``causal`` for pre before post,
``acausal`` for post before pre, counted in pairs. This rule asks for the sensors of one
projection on every run and, after the run, moves each weight by
Δw = eta · (a_plus · causal − a_minus · acausal),  averaged over the batch. On bss2 the sensors
are read through the chip's CADC, where a pair is worth half a code and a read has about a code
of noise: the rule learns from runs with many pairs per synapse. It never touches the emulator:
everything goes through ``context.host``.
"""

from __future__ import annotations

from rules import Rule, RuleError, RunRequest, hookimpl


class PairSTDP(Rule):
    # shown by `chipctl rules`; `options` (name -> (default, help)) are filled from the
    # netlist's `train.options.pair_stdp` block into `context.options`
    name = "pair_stdp"
    description = "Pair-based STDP from the correlation sensors: dw = eta (a_plus causal - a_minus acausal)."
    options = {
        "projection": (None, "projection whose weights learn (required)"),
        "eta": (0.05, "learning rate: weight change (model units) per unit of correlation"),
        "a_plus": (1.0, "amplitude of potentiation (pre before post)"),
        "a_minus": (1.0, "amplitude of depression (post before pre)"),
    }

    @hookimpl
    def chipctl_configure(self, context):
        # fail early, before the first run, with a message that names the rule, hook and option
        proj = context.options["projection"]
        if proj not in context.host.projections:
            raise RuleError(f"option projection: expected one of {', '.join(context.host.projections)}, "
                            f"got {proj!r}", plugin=self.name, hook="chipctl_configure")

    @hookimpl
    def chipctl_run_request(self, context, batch):
        # ask the trainer to read this projection's correlation sensors in the coming run
        return RunRequest(correlations=(context.options["projection"],))

    @hookimpl
    def chipctl_run_finished(self, context, batch, result):
        opt, host = context.options, context.host
        proj = opt["projection"]
        corr = result.correlations[proj]  # causal, acausal: (batch, n_pre, n_post)
        dw = opt["eta"] * (opt["a_plus"] * corr.causal - opt["a_minus"] * corr.acausal).mean(axis=0)
        # one write per batch; the host quantizes and clips it (and returns what it stored), and
        # the trainer's transaction rolls it back if any rule fails later in this batch
        host.write_weights(proj, host.read_weights(proj) + dw)
