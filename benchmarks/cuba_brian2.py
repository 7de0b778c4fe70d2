#!/usr/bin/env python3
"""Vogels-Abbott CUBA benchmark in Brian2 (peer reference for chipctl).

Standalone: depends only on brian2 and numpy (plus the standard library's
json, time, argparse, sys).  Run with the Python of a venv that has Brian2:

    brian2-venv/bin/python benchmarks/cuba_brian2.py [--target cython|numpy]
        [--seed N] [--duration-ms MS] [--neurons N]

The model is the classic Brian2 CUBA example (Vogels & Abbott 2005,
Brette et al. 2007 benchmark 2): 4000 LIF neurons (3200 exc, 800 inh; --neurons scales it,
80 % excitatory),
current-based exponential synapses, p = 0.02, dt = 0.1 ms.

Timings (seconds, wall clock, time.perf_counter):
  import_s      the `import brian2` statement alone
  build_s       construction of groups, synapses (incl. connect), monitor, Network
  first_run_s   first net.run(duration): includes code generation / compilation
                (or loading from the Cython cache when warm) and the step loop
  second_run_s  a second net.run(duration) continuing the same network; code
                objects are already built, so this is essentially the step loop
  per_step_us   second_run_s / steps * 1e6
  wall_s        time since the first statement of this script (interpreter
                start-up itself is not included; time the process externally)

spikes / mean_rate_hz refer to the first run (t = 0 .. duration);
spikes_second_run / mean_rate_second_run_hz to the continuation.

Exactly one JSON object is printed on stdout; Brian2's log goes to stderr.
"""
import time

_T_SCRIPT0 = time.perf_counter()

import argparse
import json
import sys

_T_IMPORT0 = time.perf_counter()
import brian2
_T_IMPORT1 = time.perf_counter()

import numpy as np
from brian2 import (ms, mV, second, NeuronGroup, Synapses, SpikeMonitor,
                    Network, defaultclock, prefs, seed as b2_seed)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--target", choices=("cython", "numpy"), default="cython",
                   help="prefs.codegen.target (default: cython)")
    p.add_argument("--seed", type=int, default=12345,
                   help="random seed for connectivity and initial v (default 12345)")
    p.add_argument("--duration-ms", type=float, default=1000.0,
                   help="biological time per run in ms (default 1000)")
    p.add_argument("--neurons", type=int, default=4000,
                   help="network size, 80 %% excitatory (default 4000, the classic CUBA)")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    prefs.codegen.target = args.target
    b2_seed(args.seed)

    dt = 0.1 * ms
    defaultclock.dt = dt
    duration = args.duration_ms * ms
    steps = int(round(float(duration / dt)))

    t_build0 = time.perf_counter()

    N = args.neurons
    NE = N * 4 // 5
    taum = 20 * ms
    taue = 5 * ms
    taui = 10 * ms
    Vt = -50 * mV
    Vr = -60 * mV
    El = -49 * mV
    we = (60 * 0.27 / 10) * mV   # excitatory synaptic weight (voltage jump)
    wi = (-20 * 4.5 / 10) * mV   # inhibitory synaptic weight

    eqs = """
    dv/dt  = (ge+gi-(v-El))/taum : volt (unless refractory)
    dge/dt = -ge/taue : volt
    dgi/dt = -gi/taui : volt
    """
    P = NeuronGroup(N, eqs, threshold="v>Vt", reset="v = Vr",
                    refractory=5 * ms, method="exact", name="P")
    P.v = "Vr + rand() * (Vt - Vr)"
    P.ge = 0 * mV
    P.gi = 0 * mV

    Ce = Synapses(P, P, on_pre="ge += we", name="Ce")
    Ci = Synapses(P, P, on_pre="gi += wi", name="Ci")
    Ce.connect("i<NE", p=0.02)
    Ci.connect("i>=NE", p=0.02)

    s_mon = SpikeMonitor(P, name="spikes")
    net = Network(P, Ce, Ci, s_mon)

    t_build1 = time.perf_counter()

    net.run(duration, namespace=None)
    t_run1 = time.perf_counter()
    spikes_first = int(s_mon.num_spikes)

    net.run(duration, namespace=None)
    t_run2 = time.perf_counter()
    spikes_total = int(s_mon.num_spikes)
    spikes_second = spikes_total - spikes_first

    first_run_s = t_run1 - t_build1
    second_run_s = t_run2 - t_run1
    dur_s = float(duration / second)

    # Which code-object classes actually ran (guards against a silent fallback).
    codeobj_classes = set()
    for obj in net.objects:
        for sub in [obj] + list(getattr(obj, "contained_objects", [])):
            co = getattr(sub, "codeobj", None)
            if co is not None:
                codeobj_classes.add(type(co).__name__)
    codeobj_classes = sorted(codeobj_classes)

    result = {
        "peer": "brian2",
        "version": brian2.__version__,
        "numpy_version": np.__version__,
        "python": sys.version.split()[0],
        "target": args.target,
        "codeobject_classes": codeobj_classes,
        "seed": args.seed,
        "neurons": N,
        "synapses": int(len(Ce) + len(Ci)),
        "dt_ms": float(dt / ms),
        "duration_ms": args.duration_ms,
        "steps": steps,
        "import_s": _T_IMPORT1 - _T_IMPORT0,
        "build_s": t_build1 - t_build0,
        "first_run_s": first_run_s,
        "second_run_s": second_run_s,
        "per_step_us": second_run_s / steps * 1e6,
        "spikes": spikes_first,
        "mean_rate_hz": spikes_first / (N * dur_s),
        "spikes_second_run": spikes_second,
        "mean_rate_second_run_hz": spikes_second / (N * dur_s),
        "wall_s": time.perf_counter() - _T_SCRIPT0,
    }
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
