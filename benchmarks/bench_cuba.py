#!/usr/bin/env python3
"""CUBA speed and memory: chipctl (ideal profile) against Brian2 (cython), interleaved.

    python benchmarks/bench_cuba.py [--reps 3] [--warmup 1] [--json]
        [--brian-python brian2-venv/bin/python] [--brian-target cython]
        [--chipctl chipctl] [--netlist benchmarks/cuba_ideal.yaml]

Each repetition runs, as separate processes and in alternating order (chipctl first in even
repetitions, Brian2 first in odd ones, so both share the machine's noise fairly):

  (a) ``chipctl run benchmarks/cuba_ideal.yaml --json``  — 4000 LIF, 2 % connectivity, step 0.1 ms,
      1 s biological (10 000 steps) on the ``ideal`` profile;
  (b) ``<brian-python> benchmarks/cuba_brian2.py --target cython`` — the same model in Brian2,
      dt 0.1 ms, 1 s, run twice (the second run has its code objects built already).

Measured per process, from outside: wall time from spawn to exit (``process_wall_s``), CPU time
(user + sys) and peak resident memory (``maxrss_mb``), all from ``os.wait4`` on that child alone.
From the programs' own JSON: chipctl ``wall_s`` (load + map + run + summary inside the process),
``run_wall_s`` (all of ``host.run``), of that ``kernel_load_s`` (loading the compiled step loop
from its on-disk cache, once per process) and ``loop_s`` (the step loop alone), and ``steps``; Brian2 ``import_s``, ``build_s``,
``first_run_s`` (first ``net.run``: code generation / Cython cache loading + 10 000 steps),
``second_run_s`` (the step loop alone) and ``per_step_us`` (second run / steps).

Ratios are chipctl / Brian2 (> 1: chipctl is slower) of the medians over the repetitions. The
mean firing rates of both are printed as a sanity check (Brian2's CUBA fires at about 5.6 Hz).
Only the CLI and the two programs' JSON are used: nothing of chipctl's internals.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_NETLIST = HERE / "cuba_ideal.yaml"
BRIAN_SCRIPT = HERE / "cuba_brian2.py"
DEFAULT_BRIAN_PYTHON = os.environ.get("BRIAN_PYTHON", "brian2-venv/bin/python")


def run_timed(argv: list[str], cwd: Path) -> dict:
    """Run argv to completion; wall time, CPU time and peak RSS of that one child (os.wait4)."""
    import subprocess

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL, cwd=str(cwd))
        _, status, usage = os.wait4(proc.pid, 0)
        t1 = time.perf_counter()
        proc.returncode = os.waitstatus_to_exitcode(status)  # already reaped: keep Popen from waiting
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode("utf-8", "replace")
        stderr = err.read().decode("utf-8", "replace")
    return {
        "argv": argv,
        "returncode": proc.returncode,
        "process_wall_s": t1 - t0,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "maxrss_mb": usage.ru_maxrss / 1024.0,  # Linux: kilobytes
        "stdout": stdout,
        "stderr": stderr,
    }


def last_json_object(text: str) -> dict:
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    raise ValueError("no JSON object on stdout")


def fail(what: str, res: dict) -> None:
    sys.stderr.write(f"bench_cuba: {what} failed (exit {res['returncode']}): {' '.join(res['argv'])}\n")
    sys.stderr.write(res["stderr"][-4000:] + "\n")
    sys.exit(1)


def run_chipctl(chipctl: list[str], netlist: Path) -> dict:
    res = run_timed(chipctl + ["run", str(netlist), "--json"], cwd=HERE.parent)
    if res["returncode"] != 0:
        fail("chipctl", res)
    js = last_json_object(res["stdout"])
    pops = js["populations"]
    n = sum(p["size"] for p in pops.values())
    spikes = sum(p["spikes"] for p in pops.values())
    # rate_hz is in the netlist's timescale (biological here): the size-weighted mean is the mean rate.
    rate = sum(p["rate_hz"] * p["size"] for p in pops.values()) / n
    steps = int(js["steps"])
    return {
        "process_wall_s": res["process_wall_s"],
        "cpu_s": res["cpu_s"],
        "maxrss_mb": res["maxrss_mb"],
        "wall_s": float(js["wall_s"]),
        "run_wall_s": float(js["run_wall_s"]),
        "kernel_load_s": float(js["kernel_load_s"]),
        "loop_s": float(js["loop_s"]),
        "steps": steps,
        "per_step_us": float(js["loop_s"]) / steps * 1e6,
        "neurons": n,
        "spikes": spikes,
        "mean_rate_hz": rate,
        "profile": js.get("profile"),
        "dropped_events": js.get("dropped_events"),
    }


def run_brian(python: str, target: str) -> dict:
    res = run_timed([python, str(BRIAN_SCRIPT), "--target", target], cwd=HERE.parent)
    if res["returncode"] != 0:
        fail("Brian2", res)
    js = last_json_object(res["stdout"])
    out = {
        "process_wall_s": res["process_wall_s"],
        "cpu_s": res["cpu_s"],
        "maxrss_mb": res["maxrss_mb"],
    }
    for key in ("wall_s", "import_s", "build_s", "first_run_s", "second_run_s", "per_step_us",
                "mean_rate_hz", "mean_rate_second_run_hz"):
        out[key] = float(js[key])
    out["steps"] = int(js["steps"])
    out["first_run_per_step_us"] = out["first_run_s"] / out["steps"] * 1e6
    out["spikes"] = int(js["spikes"])
    out["synapses"] = int(js["synapses"])
    out["version"] = js.get("version")
    out["codeobject_classes"] = js.get("codeobject_classes")
    return out


def medians(rows: list[dict]) -> dict:
    keys = [k for k, v in rows[0].items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    return {k: statistics.median(r[k] for r in rows) for k in keys}


# (label, chipctl key, Brian2 key, unit)
COMPARISONS = [
    ("whole process, wall", "process_wall_s", "process_wall_s", "s"),
    ("host.run vs first net.run (incl. code loading)", "run_wall_s", "first_run_s", "s"),
    ("step loop vs second net.run (loop only)", "loop_s", "second_run_s", "s"),
    ("per step (loop only, both) ", "per_step_us", "per_step_us", "us"),
    ("CPU time (user+sys)", "cpu_s", "cpu_s", "s"),
    ("peak RSS", "maxrss_mb", "maxrss_mb", "MB"),
]


def summarize(chip_rows: list[dict], brian_rows: list[dict]) -> dict:
    chip_med = medians(chip_rows)
    brian_med = medians(brian_rows) if brian_rows else None
    ratios = {}
    if brian_med:
        for label, ck, bk, _ in COMPARISONS:
            ratios[label] = chip_med[ck] / brian_med[bk] if brian_med[bk] else None
    return {"chipctl_median": chip_med, "brian2_median": brian_med, "ratios_chipctl_over_brian2": ratios}


def print_table(summary: dict, reps: int, brian_note: str | None) -> None:
    c, b, r = summary["chipctl_median"], summary["brian2_median"], summary["ratios_chipctl_over_brian2"]
    print(f"CUBA 4000 LIF, 10 000 steps of 0.1 ms — medians of {reps} interleaved repetitions")
    print(f"{'metric':<50} {'chipctl':>10} {'Brian2':>10} {'chip/B2':>8}")
    for label, ck, bk, unit in COMPARISONS:
        cv = f"{c[ck]:.3f}" if unit != "us" else f"{c[ck]:.1f}"
        if b:
            bv = f"{b[bk]:.3f}" if unit != "us" else f"{b[bk]:.1f}"
            rv = f"{r[label]:.2f}" if r.get(label) is not None else "-"
        else:
            bv, rv = "-", "-"
        print(f"{label + ' [' + unit + ']':<50} {cv:>10} {bv:>10} {rv:>8}")
    print(f"{'chipctl in-process wall_s (load+map+run+summary) [s]':<50} {c['wall_s']:>10.3f}")
    print(f"{'chipctl kernel load (in host.run, once per process) [s]':<50} {c['kernel_load_s']:>10.3f}")
    if b:
        print(f"{'Brian2 import / build / wall_s [s]':<50} "
              f"{b['import_s']:.3f} / {b['build_s']:.3f} / {b['wall_s']:.3f}")
    print(f"{'mean rate [Hz]':<50} {c['mean_rate_hz']:>10.3f} {b['mean_rate_hz'] if b else float('nan'):>10.3f}")
    if b:
        print(f"{'Brian2 mean rate, second run [Hz]':<50} {'':>10} {b['mean_rate_second_run_hz']:>10.3f}")
    if brian_note:
        print(brian_note)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--reps", type=int, default=3, help="measured repetitions of each program (default 3)")
    p.add_argument("--warmup", type=int, default=1,
                   help="unmeasured warm-up runs of each program first (default 1)")
    p.add_argument("--netlist", type=Path, default=DEFAULT_NETLIST, help="chipctl netlist (default cuba_ideal.yaml)")
    p.add_argument("--chipctl", default="chipctl",
                   help="chipctl executable (default: chipctl on PATH; else python -m of this interpreter)")
    p.add_argument("--brian-python", default=DEFAULT_BRIAN_PYTHON,
                   help=f"Python of the Brian2 venv (default {DEFAULT_BRIAN_PYTHON})")
    p.add_argument("--brian-target", choices=("cython", "numpy"), default="cython")
    p.add_argument("--skip-brian", action="store_true", help="measure chipctl only")
    p.add_argument("--json", action="store_true", help="print the results as one JSON object")
    args = p.parse_args(argv)
    if args.reps < 1:
        p.error("--reps must be >= 1")

    exe = shutil.which(args.chipctl)
    if exe:
        chipctl = [exe]
    else:
        chipctl = [sys.executable, "-c", "import sys; from cli import app; sys.argv[0] = 'chipctl'; app()"]
    netlist = args.netlist.resolve()

    brian_note = None
    do_brian = not args.skip_brian
    if do_brian and not (Path(args.brian_python).is_file() and os.access(args.brian_python, os.X_OK)):
        brian_note = (f"Brian2 skipped: no Python at {args.brian_python} "
                      f"(install Brian2 in a venv and pass --brian-python PATH).")
        sys.stderr.write(brian_note + "\n")
        do_brian = False
    elif not do_brian:
        brian_note = "Brian2 skipped (--skip-brian)."

    log = sys.stderr
    for i in range(args.warmup):
        log.write(f"warm-up {i + 1}/{args.warmup}\n")
        run_chipctl(chipctl, netlist)
        if do_brian:
            run_brian(args.brian_python, args.brian_target)

    chip_rows, brian_rows = [], []
    for i in range(args.reps):
        order = ["chip", "brian"] if i % 2 == 0 else ["brian", "chip"]
        for which in order:
            if which == "chip":
                row = run_chipctl(chipctl, netlist)
                chip_rows.append(row)
                log.write(f"rep {i + 1}/{args.reps} chipctl: process {row['process_wall_s']:.2f} s, "
                          f"host.run {row['run_wall_s']:.2f} s (kernel load {row['kernel_load_s']:.2f} s, loop {row['loop_s']:.2f} s), {row['per_step_us']:.0f} us/step, "
                          f"{row['mean_rate_hz']:.2f} Hz, {row['maxrss_mb']:.0f} MB\n")
            elif do_brian:
                row = run_brian(args.brian_python, args.brian_target)
                brian_rows.append(row)
                log.write(f"rep {i + 1}/{args.reps} Brian2:  process {row['process_wall_s']:.2f} s, "
                          f"first run {row['first_run_s']:.2f} s, second {row['second_run_s']:.2f} s, "
                          f"{row['per_step_us']:.0f} us/step, {row['mean_rate_hz']:.2f} Hz, "
                          f"{row['maxrss_mb']:.0f} MB\n")

    summary = summarize(chip_rows, brian_rows)
    if args.json:
        result = {
            "benchmark": "cuba",
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "cpus": os.cpu_count(),
            "reps": args.reps,
            "warmup": args.warmup,
            "netlist": str(netlist),
            "chipctl_command": chipctl + ["run", str(netlist), "--json"],
            "brian2_command": ([args.brian_python, str(BRIAN_SCRIPT), "--target", args.brian_target]
                               if do_brian else None),
            "brian2_note": brian_note,
            **summary,
            "chipctl_runs": chip_rows,
            "brian2_runs": brian_rows,
        }
        print(json.dumps(result, indent=1))
    else:
        print_table(summary, args.reps, brian_note)
    return 0


if __name__ == "__main__":
    sys.exit(main())
