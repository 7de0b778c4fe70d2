#!/usr/bin/env python3
"""Speed of surrogate-gradient training in the loop against snnTorch's BPTT on the same network.

Both train Yin-Yang batches of 64 on the 25-100-3 network of ``netlists/yinyang_surrogate_bss2.yaml``
(current-based LIF hidden layer, τ_mem 12 µs, τ_syn 6 µs; a non-spiking leaky readout; the max-over-
time cross-entropy; Adam; fast-sigmoid surrogate) on the same time grid (the chip's 0.2 µs step,
250 steps for 50 µs). chipctl emulates the chip forward (event routing, mismatch, noise, the CADC)
and runs the rule's numpy BPTT on the host; snnTorch runs the forward and backward of its own
discrete model in torch. Measured in one run, one after the other, each on one thread.

    python benchmarks/bench_surrogate_snntorch.py --batches 20 \
        --snntorch-python /path/to/snntorch-venv/bin/python [--json]
    python benchmarks/bench_surrogate_snntorch.py --batches 5 --dt 0.6 --skip-eventprop   # a coarser host grid

snnTorch is not a dependency: it runs in its own environment (``--snntorch-python``, a Python
with torch and snntorch; see benchmarks/README.md), from this same file (``--snntorch-child``).
Prints seconds per batch and per 5000-sample epoch for both, their ratio and where chipctl's time
goes (chip run, the rule's observations / tape / backward, the trainer's writes); and, in the same
run, EventProp in the loop on the same network (``netlists/yinyang_bss2.yaml``) for comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

NETLIST = Path(__file__).resolve().parent.parent / "netlists" / "yinyang_surrogate_bss2.yaml"
EVENTPROP_NETLIST = NETLIST.parent / "yinyang_bss2.yaml"
EPOCH_SAMPLES = 5000


def bench_chipctl(batches: int, dt: float | None = None) -> dict:
    import numpy as np

    from chip.netlist import load_netlist
    from rules.surrogate import model as m
    from rules.surrogate.rule import Surrogate
    from rules.training import Trainer

    nl = load_netlist(NETLIST)
    train = dict(nl.train, train_size=64 * (batches + 2), test_size=64, epochs=1, checkpoint=None)
    if dt is not None:  # the rule's host grid (default: the chip's step)
        options = dict(train.get("options") or {})
        options["surrogate"] = dict(options.get("surrogate") or {}, dt=dt)
        train["options"] = options
    trainer = Trainer(nl.replace(train=train))
    parts = {"chip_run": 0.0, "observations": 0.0, "tape": 0.0, "backward": 0.0}
    host_run = trainer.host.run

    def timed_run(*a, **k):
        t = time.perf_counter()
        out = host_run(*a, **k)
        parts["chip_run"] += time.perf_counter() - t
        return out

    rule_obs, tape_fn, back_fn = Surrogate.observations, m.observed_tape, m.backward

    def timed(name, fn):
        def wrapper(*a, **k):
            t = time.perf_counter()
            out = fn(*a, **k)
            parts[name] += time.perf_counter() - t
            return out
        return wrapper

    trainer.host.run = timed_run
    Surrogate.observations = timed("observations", rule_obs)
    m.observed_tape = timed("tape", tape_fn)
    m.backward = timed("backward", back_fn)
    try:
        x, y = trainer.x_train, trainer.y_train
        # two warm-up batches (the compiled step loop loads, numpy warms up)
        for i in range(2):
            idx = np.arange(i * 64, (i + 1) * 64)
            trainer.train_step(trainer._batch(x, y, idx, training=True))
        for key in parts:
            parts[key] = 0.0
        t0 = time.perf_counter()
        for i in range(2, batches + 2):
            idx = np.arange(i * 64, (i + 1) * 64)
            trainer.train_step(trainer._batch(x, y, idx, training=True))
        total = time.perf_counter() - t0
    finally:
        trainer.host.run = host_run
        Surrogate.observations, m.observed_tape, m.backward = rule_obs, tape_fn, back_fn
    per = {k: v / batches for k, v in parts.items()}
    per["trainer_and_other"] = total / batches - sum(per.values())
    return {"s_per_batch": total / batches, "parts_s_per_batch": per}


def bench_eventprop(batches: int) -> dict:
    """EventProp in the loop on the same network (yinyang_bss2.yaml), the same harness."""
    import numpy as np

    from chip.netlist import load_netlist
    from rules.training import Trainer

    nl = load_netlist(EVENTPROP_NETLIST)
    trainer = Trainer(nl.replace(train=dict(nl.train, train_size=64 * (batches + 2), test_size=64, epochs=1,
                                            checkpoint=None)))
    run_s = [0.0]
    host_run = trainer.host.run

    def timed_run(*a, **k):
        t = time.perf_counter()
        out = host_run(*a, **k)
        run_s[0] += time.perf_counter() - t
        return out

    trainer.host.run = timed_run
    x, y = trainer.x_train, trainer.y_train
    for i in range(2):
        trainer.train_step(trainer._batch(x, y, np.arange(i * 64, (i + 1) * 64), training=True))
    run_s[0] = 0.0
    t0 = time.perf_counter()
    for i in range(2, batches + 2):
        trainer.train_step(trainer._batch(x, y, np.arange(i * 64, (i + 1) * 64), training=True))
    total = time.perf_counter() - t0
    return {"s_per_batch": total / batches, "chip_run_s_per_batch": run_s[0] / batches}


def bench_snntorch(batches: int) -> dict:
    """Runs in the snnTorch environment: the same network and data, in torch."""
    import numpy as np
    import snntorch as snn
    import torch
    from snntorch import surrogate

    torch.set_num_threads(1)
    sys.path.insert(0, str(NETLIST.parent.parent))
    dt, duration, tm, ts = 0.2, 50.0, 12.0, 6.0
    T = int(round(duration / dt))
    alpha, beta = float(np.exp(-dt / ts)), float(np.exp(-dt / tm))
    rng = np.random.default_rng(0)
    # Yin-Yang latency code: [x, y, 1-x, 1-y] at 2 + 20 v us, a bias at 2 us, each 5 times
    feats = rng.random((64 * (batches + 2), 2))
    feats = np.concatenate([feats, 1 - feats], axis=1)
    times = np.concatenate([2 + 20 * feats, np.full((len(feats), 1), 2.0)], axis=1)
    times = np.tile(times, (1, 5))
    labels = torch.as_tensor(rng.integers(0, 3, len(feats)))
    spikes = np.zeros((T, len(feats), 25), dtype=np.float32)
    steps = np.clip(np.ceil(times / dt).astype(int), 0, T - 1)
    for b in range(len(feats)):
        spikes[steps[b], b, np.arange(25)] = 1.0
    spikes = torch.as_tensor(spikes)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = torch.nn.Linear(25, 100, bias=False)
            self.fc2 = torch.nn.Linear(100, 3, bias=False)
            grad = surrogate.fast_sigmoid(slope=10)
            self.lif1 = snn.Synaptic(alpha=alpha, beta=beta, threshold=1.0, spike_grad=grad, reset_mechanism="zero")
            self.out = snn.Synaptic(alpha=alpha, beta=beta, threshold=1e9, spike_grad=grad, reset_mechanism="none")

        def forward(self, x):
            syn1, mem1 = self.lif1.init_synaptic()
            syn2, mem2 = self.out.init_synaptic()
            mems = []
            for t in range(x.shape[0]):
                s1, syn1, mem1 = self.lif1(self.fc1(x[t]), syn1, mem1)
                _, syn2, mem2 = self.out(self.fc2(s1), syn2, mem2)
                mems.append(mem2)
            return torch.stack(mems)

    net = Net()
    opt = torch.optim.Adam(net.parameters(), lr=5e-3)

    def step(i):
        x = spikes[:, i * 64:(i + 1) * 64]
        mem = net(x)
        loss = torch.nn.functional.cross_entropy(5.0 * mem.max(dim=0).values, labels[i * 64:(i + 1) * 64])
        opt.zero_grad()
        loss.backward()
        opt.step()

    for i in range(2):
        step(i)
    t0 = time.perf_counter()
    for i in range(2, batches + 2):
        step(i)
    total = time.perf_counter() - t0
    return {"s_per_batch": total / batches, "torch": torch.__version__, "snntorch": snn.__version__}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--snntorch-python", default=None, help="a Python with torch and snntorch")
    parser.add_argument("--dt", type=float, default=None,
                        help="the surrogate rule's host grid in us (default: the chip's step, 0.2 us)")
    parser.add_argument("--skip-eventprop", action="store_true", help="do not time EventProp")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--snntorch-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.snntorch_child:
        print(json.dumps(bench_snntorch(args.batches)))
        return 0
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    ours = bench_chipctl(args.batches, args.dt)
    eventprop = None if args.skip_eventprop else bench_eventprop(args.batches)
    theirs = None
    if args.snntorch_python:
        env = dict(os.environ, OMP_NUM_THREADS="1")
        proc = subprocess.run([args.snntorch_python, __file__, "--snntorch-child", "--batches", str(args.batches)],
                              capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            print(proc.stderr, file=sys.stderr)
            return 1
        theirs = json.loads(proc.stdout.strip().splitlines()[-1])
    per_epoch = EPOCH_SAMPLES / 64
    out = {"batches": args.batches, "dt_us": args.dt, "chipctl": ours, "snntorch": theirs, "eventprop": eventprop,
           "chipctl_epoch_s": ours["s_per_batch"] * per_epoch,
           "eventprop_epoch_s": eventprop["s_per_batch"] * per_epoch if eventprop else None,
           "snntorch_epoch_s": theirs["s_per_batch"] * per_epoch if theirs else None,
           "ratio_chipctl_over_snntorch": ours["s_per_batch"] / theirs["s_per_batch"] if theirs else None}
    if args.json:
        print(json.dumps(out))
        return 0
    print(f"chipctl (emulated bss2 + numpy BPTT): {ours['s_per_batch']:.3f} s per batch of 64, "
          f"{out['chipctl_epoch_s']:.1f} s per {EPOCH_SAMPLES}-sample epoch")
    for key, value in ours["parts_s_per_batch"].items():
        print(f"    {key:>18}: {value:.3f} s ({100 * value / ours['s_per_batch']:.0f} %)")
    if eventprop:
        print(f"EventProp in the loop, same network (yinyang_bss2.yaml): {eventprop['s_per_batch']:.3f} s per batch "
              f"({eventprop['chip_run_s_per_batch']:.3f} s of it the chip run), {out['eventprop_epoch_s']:.1f} s per epoch")
    if theirs:
        print(f"snnTorch {theirs['snntorch']} (torch {theirs['torch']}, 1 thread): {theirs['s_per_batch']:.3f} s per batch, "
              f"{out['snntorch_epoch_s']:.1f} s per epoch")
        print(f"ratio chipctl / snnTorch: {out['ratio_chipctl_over_snntorch']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
