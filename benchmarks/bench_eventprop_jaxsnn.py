#!/usr/bin/env python3
"""Epoch time of EventProp in the loop on the emulated chip against jaxsnn's software EventProp.

Both train the 25-100-3 Yin-Yang network (current-based LIF, τ_mem 12 µs, τ_syn 6 µs, batch 64,
5 input channels duplicated 5×) for a few epochs of about 5000 training samples, each epoch
followed by its test pass (1000 samples), one epoch of one after one epoch of the other, in one
run:

* chipctl: ``chipctl train netlists/yinyang_bss2.yaml`` as shipped (the ``bss2`` chip with every
  imperfection on, 50 µs per sample on the chip's 0.2 µs step), EventProp's backward on the host;
* jaxsnn 0.3.0: its own Yin-Yang EventProp example (``jaxsnn.examples.event.
  yinyang_layered_event_prop``: event-based software simulation, target-time loss, Adam), run
  from this same file in jaxsnn's Python (``--jaxsnn-python``), driven epoch by epoch over a pipe.

    python benchmarks/bench_eventprop_jaxsnn.py --epochs 3 \
        --jaxsnn-python /path/to/jaxsnn-venv/bin/python [--json] [--json-out results/FILE.json]

Prints each epoch's wall time (training and test pass; jaxsnn's first epoch includes compiling its
steps, chipctl's first loading its compiled loops), the medians over the later epochs, their ratio,
and where chipctl's epoch goes: the chip's emulation of the training batches, EventProp's backward,
input encoding, the test pass (evaluation, its emulation included) and the rest (glue: the rule's
loss and bookkeeping, the optimizer, writing weights to the chip). Accuracies are printed too, as a
sanity check, not as a comparison (the two train different recipes). ``CHIPCTL_THREADS`` (or
``--threads``) sets how many threads the emulation splits a batch across.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
NETLIST = HERE.parent / "netlists" / "yinyang_bss2.yaml"


# ------------------------------------------------------------------------------------ jaxsnn side
def jaxsnn_child(train_size: int, test_size: int, seed: int) -> int:
    """Runs in jaxsnn's Python: builds its Yin-Yang EventProp example's network and trains one
    epoch per line read from stdin, answering one JSON line per epoch on stdout."""
    from functools import partial

    import jax
    import optax
    from jax import random

    import jaxsnn
    from jaxsnn.base.dataset import data_loader, yinyang_dataset
    from jaxsnn.event.encode import encode, spatio_temporal_encode, target_temporal_encode
    from jaxsnn.event.loss import mse_loss
    from jaxsnn.event.modules import LIF, Linear, Source
    from jaxsnn.event.modules.lif.lif import LIFParameters
    from jaxsnn.event.topology import Topology
    from jaxsnn.event.training import update
    from jaxsnn.event.types import OptState
    from jaxsnn.examples.event.utils import loss_wrapper, test_step

    # the example's defaults (yinyang_layered_event_prop.get_parser)
    tau_syn, tau_mem, batch = 6e-6, 12e-6, 64
    params = LIFParameters(v_reset=-1000.0, v_th=1.0, tau_syn=tau_syn, tau_mem=tau_mem)
    n_train, n_test = train_size // batch, max(1, test_size // batch)
    rng = random.PRNGKey(seed)
    param_rng, train_rng, test_rng = random.split(rng, 3)
    xy_train = yinyang_dataset(train_rng, batch * n_train, mirror=True, bias_spike=0.0)
    xy_test = yinyang_dataset(test_rng, batch * n_test, mirror=True, bias_spike=0.0)
    inp = jax.jit(jax.vmap(partial(spatio_temporal_encode, t_late=2.0 * tau_syn, duplication=5,
                                   duplicate_neurons=False)))
    tgt = jax.jit(jax.vmap(partial(target_temporal_encode, n_classes=3, correct_target_time=0.8 * tau_syn,
                                   wrong_target_time=1.2 * tau_syn)))
    trainset, testset = encode(xy_train, inp, tgt), encode(xy_test, inp, tgt)
    trainset = ({"inp": trainset[0]}, trainset[1])
    testset = ({"inp": testset[0]}, testset[1])
    builder = Topology(t_max=4.0 * tau_syn, backprop_method="eventprop")
    builder.add({"inp": Source(5), "lif1": LIF(100, 125, params), "lif2": LIF(3, 103, params),
                 "syn1": Linear(mean=3.0 / 5, std=1.6 / 5, min_delay=0.0),
                 "syn2": Linear(mean=0.5, std=0.8, min_delay=0.0)})
    builder.connect([("inp", "syn1"), ("syn1", "lif1"), ("lif1", "syn2"), ("syn2", "lif2")])
    init_fn, apply_fn = builder.done()
    weights = init_fn(param_rng)
    optimizer = optax.chain(optax.scale(1.0 / tau_syn), optax.clip(0.01),
                            optax.adam(optax.exponential_decay(0.005, n_train, 0.99)))
    state = OptState(optimizer.init(weights), weights, rng)
    loss_fn = partial(loss_wrapper, apply_fn, mse_loss, params.tau_mem, "lif2", 3)
    update_fn = jax.jit(partial(update, optimizer, loss_fn))
    print(json.dumps({"ready": True, "jaxsnn": getattr(jaxsnn, "__version__", "0.3.0"), "jax": jax.__version__,
                      "train_samples": batch * n_train, "test_samples": batch * n_test}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            break
        # jaxsnn.event.training.epoch, timed as a whole (its own timer covers the training scan only)
        t0, c0 = time.perf_counter(), time.process_time()
        rng, r_train, r_test = random.split(state.rng, 3)
        res = jax.lax.scan(update_fn, state, data_loader(trainset, batch, rng=r_train))
        state = OptState(res[0].opt_state, res[0].params, rng)
        jax.block_until_ready(state.params)
        t1 = time.perf_counter()
        (loss, acc, _, _), _ = test_step(loss_fn, state.params, data_loader(testset, batch, rng=r_test))
        acc = float(jax.block_until_ready(acc))
        t2 = time.perf_counter()
        print(json.dumps({"epoch_s": t2 - t0, "cpu_s": time.process_time() - c0, "train_s": t1 - t0,
                          "test_s": t2 - t1, "test_accuracy": acc,
                          "test_loss": float(loss)}), flush=True)
    return 0


class JaxsnnPeer:
    def __init__(self, python: str, train_size: int, test_size: int, seed: int):
        env = dict(os.environ, JAX_PLATFORMS="cpu")
        self.proc = subprocess.Popen([python, __file__, "--jaxsnn-child", "--train-size", str(train_size),
                                      "--test-size", str(test_size), "--seed", str(seed)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=env)
        self.info = self._read()

    def _read(self) -> dict:
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError("jaxsnn's process ended: " + self.proc.stderr.read()[-3000:])
            line = line.strip()
            if line.startswith("{"):
                return json.loads(line)

    def epoch(self) -> dict:
        self.proc.stdin.write("epoch\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        try:
            self.proc.stdin.write("\n")
            self.proc.stdin.close()
        except OSError:
            pass
        self.proc.wait(timeout=60)


# ----------------------------------------------------------------------------------- chipctl side
class ChipctlTrainer:
    """The shipped netlist's training, one epoch per call, with its time split into parts."""

    def __init__(self, train_size: int, test_size: int):
        import numpy as np

        from chip.netlist import load_netlist
        from rules.eventprop import rule as eventprop_rule
        from rules.training import Trainer

        nl = load_netlist(NETLIST)
        train = dict(nl.train, train_size=train_size, test_size=test_size, checkpoint=None, epochs=1)
        self.trainer = trainer = Trainer(nl.replace(train=train))
        self.parts = parts = dict.fromkeys(("emulation", "backward", "encoding", "evaluation"), 0.0)
        self.in_eval = False

        def timed(name, fn, skip_in_eval=False):
            def wrapper(*a, **k):
                if skip_in_eval and self.in_eval:
                    return fn(*a, **k)
                t = time.perf_counter()
                try:
                    return fn(*a, **k)
                finally:
                    parts[name] += time.perf_counter() - t
            return wrapper

        trainer.host.run = timed("emulation", trainer.host.run, skip_in_eval=True)
        eventprop_rule.eventprop_gradients = timed("backward", eventprop_rule.eventprop_gradients)
        trainer._batch = timed("encoding", trainer._batch, skip_in_eval=True)  # encodes the batch
        evaluate = trainer.evaluate

        def timed_evaluate(*a, **k):
            self.in_eval = True
            t = time.perf_counter()
            try:
                return evaluate(*a, **k)
            finally:
                parts["evaluation"] += time.perf_counter() - t
                self.in_eval = False

        trainer.evaluate = timed_evaluate
        self.train_samples = len(trainer.y_train)
        self.test_samples = len(trainer.y_test)
        self._np = np

    def epoch(self) -> dict:
        import dataclasses

        tr = self.trainer
        for key in self.parts:
            self.parts[key] = 0.0
        tr.config = dataclasses.replace(tr.config, epochs=tr.epoch + 1)
        t0, c0 = time.perf_counter(), time.process_time()
        tr.fit()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        last = tr.history[-1]
        parts = dict(self.parts)
        parts["glue"] = wall - sum(parts.values())
        return {"epoch_s": wall, "cpu_s": cpu, "test_accuracy": last.get("test_accuracy"),
                "train_accuracy": last.get("train_accuracy"), "parts_s": parts}


# ------------------------------------------------------------------------------------------- main
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--train-size", type=int, default=5000)
    parser.add_argument("--test-size", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0, help="jaxsnn's seed (chipctl uses the netlist's)")
    parser.add_argument("--jaxsnn-python", default=None, help="a Python with jaxsnn 0.3.0 (skipped when absent)")
    parser.add_argument("--threads", type=int, default=None, help="CHIPCTL_THREADS for the emulation")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object")
    parser.add_argument("--json-out", default=None, help="also write the JSON to this file")
    parser.add_argument("--jaxsnn-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.jaxsnn_child:
        return jaxsnn_child(args.train_size, args.test_size, args.seed)
    if args.epochs < 1:
        parser.error("--epochs must be at least 1")
    if args.threads is not None:
        os.environ["CHIPCTL_THREADS"] = str(args.threads)
    sys.path.insert(0, str(HERE.parent))

    def say(text):
        if not args.json:
            print(text, flush=True)

    load_start = os.getloadavg()[0]
    ours = ChipctlTrainer(args.train_size, args.test_size)
    peer = JaxsnnPeer(args.jaxsnn_python, args.train_size, args.test_size, args.seed) if args.jaxsnn_python else None
    rows = []
    try:
        for e in range(1, args.epochs + 1):
            a = ours.epoch()
            say(f"epoch {e}: chipctl {a['epoch_s']:.2f} s, {a['cpu_s']:.2f} s CPU (test {a['test_accuracy']:.3f})")
            b = peer.epoch() if peer else None
            if b:
                say(f"epoch {e}: jaxsnn  {b['epoch_s']:.2f} s, {b['cpu_s']:.2f} s CPU (test {b['test_accuracy']:.3f})")
            rows.append({"epoch": e, "chipctl": a, "jaxsnn": b})
    finally:
        if peer:
            peer.close()
    later = rows[1:] if len(rows) > 1 else rows
    med_ours = statistics.median(r["chipctl"]["epoch_s"] for r in later)
    med_theirs = statistics.median(r["jaxsnn"]["epoch_s"] for r in later) if peer else None
    cpu_ours = statistics.median(r["chipctl"]["cpu_s"] for r in later)
    cpu_theirs = statistics.median(r["jaxsnn"]["cpu_s"] for r in later) if peer else None
    parts = {k: statistics.median(r["chipctl"]["parts_s"][k] for r in later) for k in rows[0]["chipctl"]["parts_s"]}
    out = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "epochs": args.epochs,
           "load_average_start": load_start, "load_average": os.getloadavg()[0], "cpu_count": os.cpu_count(),
           "chipctl": {"netlist": "netlists/yinyang_bss2.yaml", "profile": "bss2", "threads": getattr(ours.trainer.host, "threads", 1),
                       "train_samples": ours.train_samples, "test_samples": ours.test_samples,
                       "median_epoch_s": med_ours, "median_epoch_cpu_s": cpu_ours, "median_parts_s": parts},
           "jaxsnn": ({**peer.info, "median_epoch_s": med_theirs, "median_epoch_cpu_s": cpu_theirs} if peer else None),
           "ratio_chipctl_over_jaxsnn": (med_ours / med_theirs) if peer else None,
           "cpu_ratio_chipctl_over_jaxsnn": (cpu_ours / cpu_theirs) if peer else None,
           "rows": rows}
    text = json.dumps(out)
    if args.json_out:
        Path(args.json_out).write_text(text + "\n")
    if args.json:
        print(text)
        return 0
    say(f"chipctl (bss2, {out['chipctl']['threads']} thread(s)): median epoch {med_ours:.2f} s, {cpu_ours:.2f} s CPU "
        f"({ours.train_samples} training + {ours.test_samples} test samples), over epochs "
        f"{later[0]['epoch']}..{later[-1]['epoch']}")
    for key, value in parts.items():
        say(f"    {key:>10}: {value:.2f} s ({100 * value / med_ours:.0f} %)")
    if peer:
        say(f"jaxsnn {peer.info.get('jaxsnn')} (JAX {peer.info.get('jax')}): median epoch {med_theirs:.2f} s, "
            f"{cpu_theirs:.2f} s CPU "
            f"({peer.info['train_samples']} training + {peer.info['test_samples']} test samples)")
        say(f"ratio chipctl / jaxsnn: {out['ratio_chipctl_over_jaxsnn']:.2f} wall, "
            f"{out['cpu_ratio_chipctl_over_jaxsnn']:.2f} CPU (load average {out['load_average']:.1f} "
            f"on {out['cpu_count']} cores)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
