"""The contract between chipctl and learning rules: every extension point, one place.

A rule is a plugin object (usually a class instance) with ``@hookimpl``-marked methods named like
the specs below. Rules observe the chip's work and act on it only through ``context.host`` — the
same ``chip.host.HostInterface`` that the CLI and tests use — never through emulator internals.

Order of calls during ``chipctl train`` (one batch)::

    chipctl_configure(context)                       once, before the first batch
    chipctl_epoch_started(context, epoch)
      chipctl_run_request(context, batch)            -> what to record, timers
      host.run(...)
        chipctl_during_run(context, t_us)            on the plasticity timer, inside the run
      chipctl_run_finished(context, batch, result)
      chipctl_loss_terms(context, batch, result)     -> extra loss terms (regularizers)
      chipctl_gradients(context, batch, result, loss_terms) -> gradients (gradient rules)
      (the trainer applies its optimizer and writes weights/parameters in one transaction)
      chipctl_after_update(context, batch, written)
    chipctl_epoch_finished(context, epoch, metrics)
    chipctl_state(context) / chipctl_load_state(context, state)   at checkpoints / on --resume
    chipctl_figures(context, history)                when the training pictures are drawn

Everything a batch does to the chip happens inside one host transaction: if any hook raises, the
trainer names the plugin and the hook, every write of that batch is rolled back, and the last
checkpoint stays valid. ``chipctl_calibrate`` is the extension point for calibration routines,
which share the same host interface.

Built in today: EventProp, which reads spike times in ``chipctl_gradients``; surrogate gradients
(``rules.surrogate``), which ask for membrane traces in ``chipctl_run_request`` (with the CADC period
they can use) and return weight and time-constant gradients (written as parameters), carrying back
other rules' loss terms on spike counts and membrane samples; STDP weight transport, which runs its
own noise-driven phases from ``chipctl_epoch_started`` (a plasticity timer reading sensors with
``host.read_correlations`` and writing feedback weights) and returns gradients through those
feedback weights; the autoencoder regularizer (``rules.autoencoder``), which only returns terms
from ``chipctl_loss_terms`` that any gradient rule picks up, with no import of the regularizer; and
the calibration, which implements ``chipctl_calibrate``. A rule shows what it learns (angles, time constants) in the training
pictures with ``chipctl_figures``.
"""

from __future__ import annotations

import pluggy

__all__ = ["hookspec", "hookimpl", "PROJECT_NAME", "ENTRY_POINT_GROUP"]

PROJECT_NAME = "chipctl"
ENTRY_POINT_GROUP = "chipctl.rules"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def chipctl_configure(context):
    """Called once before training or calibration starts, after the chip is loaded.

    ``context.options`` holds this rule's options from the netlist's ``train.options.<rule>``
    block (already merged with the rule's defaults); raise ``chip.errors.RuleError`` for a bad
    option. Allocate rule state here (traces, random generators from ``context.rng``).
    Return value ignored.
    """


@hookspec
def chipctl_epoch_started(context, epoch):
    """Called at the start of each epoch (0-based ``epoch``). Return value ignored."""


@hookspec
def chipctl_run_request(context, batch):
    """Called before each run. ``batch`` is a ``rules.api.Batch`` (inputs, labels, sample indices).

    Return a ``rules.api.RunRequest`` saying what this rule needs recorded — membrane traces
    (``membrane``: population -> neuron indices, read through the CADC), correlation sensors
    (``correlations``: projection names), and a plasticity timer (``timer_us``) — or None. The
    trainer merges the requests of all rules; asking for more ADC channels than the chip has is
    an error at the run, not a silent cut.
    """


@hookspec
def chipctl_during_run(context, t_us):
    """Called between emulator steps every ``timer_us`` of a run that a rule asked a timer for,
    like the chip's plasticity processor. ``t_us`` is the hardware time. The rule may read
    ``context.host.read_correlations(...)`` (reading does not clear; ``reset_correlations`` does)
    and write weights through ``context.host``; writes take effect from the next step. Return
    value ignored.
    """


@hookspec
def chipctl_run_finished(context, batch, result):
    """Called after each run with the ``chip.host.RunResult`` (spike events, traces, correlations,
    drops). For rules that only observe. Return value ignored."""


@hookspec
def chipctl_loss_terms(context, batch, result):
    """Return a list of ``rules.api.LossTerm`` to add to the training loss, or None.

    A term has a value and its gradient with respect to observables the chip returns, keyed by
    ``(kind, population)`` with kind ``"spike_counts"`` (batch, neurons), ``"membrane"`` (batch,
    samples, neurons of the recorded trace) or ``"first_spike_times"`` (batch, neurons). Gradient
    rules add the gradients they can carry back through their own model and report the kinds
    they cannot in their metrics. This is how regularizers compose with any gradient rule.
    """


@hookspec
def chipctl_gradients(context, batch, result, loss_terms):
    """Return a ``rules.api.Gradients`` (loss, metrics, d loss / d weight per projection, d loss /
    d parameter per (population, parameter)) for this batch, or None for rules that do not
    compute gradients. Gradients from several rules are summed; the trainer's optimizer turns them
    into writes. ``loss_terms`` are all rules' ``chipctl_loss_terms`` results, flattened.
    """


@hookspec
def chipctl_after_update(context, batch, written):
    """Called after the trainer wrote this batch's updates; ``written`` maps projection names and
    (population, parameter) pairs to the values the chip actually stored (quantized). Return value
    ignored."""


@hookspec
def chipctl_epoch_finished(context, epoch, metrics):
    """Called after each epoch with the epoch's metrics (``train_loss``, ``train_accuracy``,
    ``test_accuracy`` when evaluated, plus rule metrics). Return a dict of extra metrics to log,
    or None."""


@hookspec
def chipctl_state(context):
    """Return this rule's private state as a dict of numpy arrays and JSON-able values, to be
    stored in the checkpoint, or None when the rule is stateless."""


@hookspec
def chipctl_load_state(context, state):
    """Restore the dict this rule returned from ``chipctl_state`` (on ``--resume``)."""


@hookspec(firstresult=True)
def chipctl_calibrate(context, targets):
    """Calibrate the chip: measure it through ``context.host`` (runs, traces, the CADC's reference
    line) and write per-circuit codes (``host.write_codes``) so that every circuit measures
    ``targets`` (population -> parameter -> value, model units and µs). Report progress through
    ``context.progress(fraction, status)`` when it is not None. Return a report dict — per
    population: ``parameters`` -> name -> ``target``, ``before`` / ``after`` (``mean``,
    ``spread``), ``ratio``, ``unreached`` (the circuits that could not be brought to the target) —
    the first calibration plugin that returns one wins; or None to pass. ``chipctl calibrate``
    calls it (docs/calibration.md)."""



@hookspec
def chipctl_figures(context, history):
    """Return the figures this rule adds to the training pictures, or None: a dict of figure name
    -> a panel as plain data, or a matplotlib ``Figure`` the rule drew itself.

    Called after each epoch's checkpoint when ``chipctl train`` draws its pictures (the
    checkpoint directory's ``training.png``; matplotlib installed, ``--no-plot`` not given).
    ``history`` is the metrics of every epoch so far (a list of dicts, oldest first; copies).
    A panel becomes part of ``training.png``, drawn in chipctl's style, and is stored beside it
    (``training_figures.json``) so that ``chipctl plot CHECKPOINT_DIR`` redraws it without the
    rule::

        {"kind": "lines", "y": {label: values, ...}, "x": values,    # x default: epochs 1..n
         "xlabel": "epoch", "ylabel": "angle to the true gradient (°)"}
        {"kind": "hist", "values": {label: values, ...}, "xlabel": "tau_mem (µs)", "bins": 20}

    A ``Figure`` is written as ``training.<rule>.<name>.png`` in the checkpoint directory (only
    while training: redrawing needs the rule). Put units in the labels. Return value: dict or None.
    """
