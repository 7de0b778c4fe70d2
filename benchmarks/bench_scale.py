#!/usr/bin/env python3
"""How set-up, step loop and memory grow with the network: CUBA scaled to N neurons, chipctl
(ideal profile) against Brian2 (cython), in one run.

    python benchmarks/bench_scale.py [--sizes 1000,4000,16000] [--reps 1] [--warmup 1] [--json]
        [--brian-python brian2-venv/bin/python] [--skip-brian]
        [--before DIR] [--bss2] [--out FILE]

The network is ``benchmarks/cuba_ideal.yaml`` with its two population sizes set to 80 % / 20 %
of N (same 2 % connectivity and seeds, same weights, 1 s biological in 0.1 ms steps), written to
a temporary directory; Brian2 runs ``benchmarks/cuba_brian2.py --neurons N`` (its CUBA model,
p = 0.02, the same weights).

Per size and repetition, as separate processes in alternating order (chipctl first in even
repetitions): ``python -m cli run <scaled netlist> --json`` of this checkout; with ``--before
DIR`` the same command of another checkout (the code before a change, run with ``PYTHONPATH=DIR``
from DIR, so both are measured in the same run on the same machine noise); and Brian2.
Measured from outside with ``os.wait4`` on the child alone: process wall time (spawn to exit) and
peak RSS. From the programs' JSON:

- chipctl: ``loop_s`` (the step loop alone); set-up = process wall − loop (interpreter and
  imports, loading the netlist, connectivity, mapping, tables, loading the compiled loop, the
  summary); per step = loop / steps.
- Brian2 (runs the network twice): ``second_run_s`` is its step loop alone (code objects built);
  the one-run process wall = process wall − second run, which is what chipctl's process does (one
  run of 1 s); set-up = one-run wall − second run (the import, build, code loading). The
  two-run process wall is reported too.

The ``ideal`` profile has 64 cores of 512 neuron circuits (32 768); a larger N gets
``chip: {cores: ceil(N / 512)}`` in its netlist, the same chip with more cores (a netlist may set
``chip.cores``). A program that fails is reported with its last line of error output instead of
figures. Medians over the repetitions; ratios chipctl / Brian2.

``--bss2`` adds two chipctl-only rows: ``netlists/cuba.yaml`` on a full 16-core bss2 chip (the
densest connectivity whose rows fit every bus), and the same with an input that fills the rows
it leaves free (``bss2_rows_netlist``); ``--sizes ''`` with ``--bss2`` measures only those.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
NETLIST = HERE / "cuba_ideal.yaml"
BRIAN_SCRIPT = HERE / "cuba_brian2.py"
DEFAULT_BRIAN_PYTHON = os.environ.get("BRIAN_PYTHON", "brian2-venv/bin/python")
IDEAL_NEURONS = 64 * 512  # the ideal profile's 64 cores of 512 neuron circuits


def scaled_netlist(n: int, directory: Path) -> Path:
    """cuba_ideal.yaml with N neurons: 80 % excitatory, the rest inhibitory."""
    text = NETLIST.read_text()
    n_exc = n * 4 // 5
    new = {"3200": n_exc, "800": n - n_exc}
    found = re.findall(r"(?m)^\s+size:\s*(\d+)\b", text)
    text = re.sub(r"(?m)^(\s+size:\s*)(\d+)\b", lambda m: f"{m[1]}{new.get(m[2], m[2])}", text)
    if sorted(found) != ["3200", "800"]:
        raise SystemExit(f"bench_scale: {NETLIST.name} no longer has sizes 3200 and 800 to scale")
    if n > IDEAL_NEURONS:  # a larger ideal chip: more cores of the same kind (chip.cores)
        text, k = re.subn(r"(?m)^(\s+)profile: ideal\b.*$", lambda m: f"{m[0]}\n{m[1]}cores: {-(-n // 512)}", text)
        if k != 1:
            raise SystemExit(f"bench_scale: {NETLIST.name} no longer has 'profile: ideal' to add cores to")
    path = directory / f"cuba_{n}.yaml"
    path.write_text(text)
    return path


BSS2_NETLIST = ROOT / "netlists" / "cuba.yaml"
BSS2_CORES, BSS2_PROBABILITY = 16, 0.014


def bss2_netlist(directory: Path) -> Path:
    """netlists/cuba.yaml on a full 16-core bss2 chip: 8192 neurons (6554 exc + 1638 inh), and
    connection probability 0.014, the densest of those tried (0.030, 0.025, 0.020, then 0.018 down
    to 0.014 by 0.001) whose rows fit every bus (at 0.015 a bus of some half needs 66 of its 64
    rows). Its expectations (of the 4000-neuron net) are left out."""
    text = BSS2_NETLIST.read_text().split("\nexpect:")[0] + "\n"
    subs = [(r"(?m)^(\s+cores:\s*)8\b", rf"\g<1>{BSS2_CORES}"), (r"(?m)^(\s+size:\s*)3200\b", r"\g<1>6554"),
            (r"(?m)^(\s+size:\s*)800\b", r"\g<1>1638"), (r"probability: 0\.02\b", f"probability: {BSS2_PROBABILITY}"),
            (r"(?m)^name: cuba\b", "name: cuba_bss2_full")]
    for pattern, repl in subs:
        text, k = re.subn(pattern, repl, text)
        if not k:
            raise SystemExit(f"bench_scale: {BSS2_NETLIST.name} has changed ({pattern!r} not found)")
    path = directory / "cuba_bss2_full.yaml"
    path.write_text(text)
    return path


#: the input that fills the rows CUBA leaves free on the full bss2 chip (see bss2_rows_netlist)
BSS2_FILL = 40


def bss2_rows_netlist(directory: Path) -> Path:
    """``bss2_netlist`` with every row it can still give in use: a Poisson input of 40 neurons
    (5 Hz, weight 0.01) projecting all-to-all onto both populations. Each of its neurons takes one
    row of one bus in every half; 40 is the fewest rows any half has left (41 does not fit), so
    239-256 of each half's 256 rows are in use (7 855 of the chip's 8 192) and the chip holds
    1.26 M synapses."""
    base = bss2_netlist(directory).read_text()
    fill = (f"\ninputs:\n  fill: {{size: {BSS2_FILL}, type: poisson, rate: 5 Hz, seed: 21}}\nprojections:\n"
            "  fill_exc: {pre: fill, post: exc, weights: 0.01, delay: 0.1 ms}\n"
            "  fill_inh: {pre: fill, post: inh, weights: 0.01, delay: 0.1 ms}\n")
    text, k = re.subn(r"\nprojections:\n", lambda m: fill, base)
    if k != 1 or "\ninputs:" in base:
        raise SystemExit("bench_scale: the bss2 netlist has changed (one projections: block, no inputs:)")
    text = text.replace("name: cuba_bss2_full", "name: cuba_bss2_rows")
    path = directory / "cuba_bss2_rows.yaml"
    path.write_text(text)
    return path


def run_timed(argv: list[str], cwd: Path, env: dict | None = None) -> dict:
    """Run argv to completion; wall time and peak RSS of that one child (os.wait4)."""
    import subprocess

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL, cwd=str(cwd), env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        t1 = time.perf_counter()
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return {"argv": argv, "returncode": proc.returncode, "process_wall_s": t1 - t0,
                "cpu_s": usage.ru_utime + usage.ru_stime, "maxrss_mb": usage.ru_maxrss / 1024.0,
                "stdout": out.read().decode("utf-8", "replace"), "stderr": err.read().decode("utf-8", "replace")}


def last_json_object(text: str) -> dict:
    for line in reversed(text.strip().splitlines()):
        if line.strip().startswith("{"):
            return json.loads(line)
    raise ValueError("no JSON object on stdout")


def run_chipctl(root: Path, netlist: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(root))
    res = run_timed([sys.executable, "-m", "cli", "run", str(netlist), "--json"], cwd=root, env=env)
    if res["returncode"] != 0:
        lines = [line for line in res["stderr"].splitlines() if line.strip() and "compiling" not in line]
        return {"error": lines[-1] if lines else f"exit {res['returncode']}"}
    js = last_json_object(res["stdout"])
    steps = int(js["steps"])
    pops = js["populations"]
    return {
        "process_wall_s": res["process_wall_s"],
        "setup_s": res["process_wall_s"] - float(js["loop_s"]),
        "loop_s": float(js["loop_s"]),
        "per_step_us": float(js["loop_s"]) / steps * 1e6,
        "maxrss_mb": res["maxrss_mb"],
        "cpu_s": res["cpu_s"],
        "in_process_wall_s": float(js["wall_s"]),
        "kernel_load_s": float(js["kernel_load_s"]),
        "steps": steps,
        "neurons": sum(p["size"] for p in pops.values()),
        "spikes": sum(p["spikes"] for p in pops.values()),
    }


def run_brian(python: str, n: int) -> dict:
    res = run_timed([python, str(BRIAN_SCRIPT), "--target", "cython", "--neurons", str(n)], cwd=ROOT)
    if res["returncode"] != 0:
        return {"error": (res["stderr"].strip().splitlines() or [f"exit {res['returncode']}"])[-1]}
    js = last_json_object(res["stdout"])
    loop = float(js["second_run_s"])
    one_run = res["process_wall_s"] - loop
    return {
        "process_wall_s": one_run,
        "setup_s": one_run - loop,
        "loop_s": loop,
        "per_step_us": float(js["per_step_us"]),
        "maxrss_mb": res["maxrss_mb"],
        "cpu_s": res["cpu_s"],
        "two_run_process_wall_s": res["process_wall_s"],
        "first_run_s": float(js["first_run_s"]),
        "import_s": float(js["import_s"]),
        "build_s": float(js["build_s"]),
        "steps": int(js["steps"]),
        "neurons": int(js["neurons"]),
        "synapses": int(js["synapses"]),
        "spikes": int(js["spikes"]),
    }


def median_of(rows: list[dict]) -> dict:
    if not rows or any("error" in r for r in rows):
        return next((r for r in rows if "error" in r), {"error": "not run"})
    keys = [k for k, v in rows[0].items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    return {k: statistics.median(r[k] for r in rows) for k in keys}


def measure(sizes: list[int], reps: int, warmup: int, brian_python: str | None, before: Path | None,
            bss2: bool = False) -> dict:
    programs = {"chipctl": lambda nl, n: run_chipctl(ROOT, nl)}
    if before is not None:
        programs["chipctl_before"] = lambda nl, n: run_chipctl(before, nl)
    if brian_python is not None:
        programs["brian2"] = lambda nl, n: run_brian(brian_python, n)
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench_scale_") as tmp:
        for n in sizes:
            netlist = scaled_netlist(n, Path(tmp))
            runs: dict[str, list[dict]] = {name: [] for name in programs}
            for rep in range(-warmup, reps):
                order = list(programs) if rep % 2 == 0 else list(reversed(programs))
                for name in order:
                    res = programs[name](netlist, n)
                    sys.stderr.write(f"bench_scale: N={n} {'warm-up' if rep < 0 else f'rep {rep}'} {name}: "
                                     + (res["error"] if "error" in res else
                                        f"{res['process_wall_s']:.2f} s, loop {res['loop_s']:.3f} s, "
                                        f"{res['maxrss_mb']:.0f} MB") + "\n")
                    if rep >= 0:
                        runs[name].append(res)
            results[str(n)] = {"runs": runs, "median": {name: median_of(rows) for name, rows in runs.items()}}
        for key, make in ((f"bss2x{BSS2_CORES}", bss2_netlist), (f"bss2x{BSS2_CORES}_rows", bss2_rows_netlist)):
            if not bss2:
                break
            netlist = make(Path(tmp))
            chip_programs = [name for name in programs if name != "brian2"]
            runs = {name: [] for name in chip_programs}
            for rep in range(-warmup, reps):
                for name in (chip_programs if rep % 2 == 0 else list(reversed(chip_programs))):
                    res = programs[name](netlist, 0)
                    sys.stderr.write(f"bench_scale: {key} {'warm-up' if rep < 0 else f'rep {rep}'} {name}: "
                                     + (res["error"] if "error" in res else
                                        f"{res['process_wall_s']:.2f} s, loop {res['loop_s']:.3f} s, "
                                        f"{res['maxrss_mb']:.0f} MB") + "\n")
                    if rep >= 0:
                        runs[name].append(res)
            results[key] = {"runs": runs, "median": {name: median_of(rows) for name, rows in runs.items()}}
    return results


def cell(m: dict) -> str:
    if "error" in m:
        return "does not run"
    return (f"{m['process_wall_s']:.2f} / {m['setup_s']:.2f} / {m['loop_s']:.2f} s "
            f"({m['per_step_us']:.0f} us) / {m['maxrss_mb']:.0f} MB")


def print_table(results: dict, reps: int) -> None:
    names = list(dict.fromkeys(name for res in results.values() for name in res["median"]))
    print(f"CUBA scaled to N neurons, 2 % connectivity, 10 000 steps of 0.1 ms; medians of {reps} "
          "repetition(s)")
    print("cells: whole process / set-up / step loop (per step) / peak RSS")
    print("| N (synapses) | " + " | ".join(names) + " | chipctl / Brian2 wall, RSS |")
    print("|---|" + "---|" * len(names) + "---|")
    for n, res in results.items():
        med = res["median"]
        syn = med.get("brian2", {}).get("synapses") or med["chipctl"].get("synapses")
        size = (f"bss2 x{BSS2_CORES}, 8 192" + (f" + {BSS2_FILL} inputs filling the rows" if n.endswith("_rows") else "")
                if n.startswith("bss2") else f"{int(n):,}")
        label = f"{size} ({syn / 1e6:.2f} M)" if syn else size
        ratio = "-"
        c, b = med["chipctl"], med.get("brian2")
        if b and "error" not in c and "error" not in b:
            ratio = f"{c['process_wall_s'] / b['process_wall_s']:.2f}, {c['maxrss_mb'] / b['maxrss_mb']:.2f}"
        print(f"| {label} | " + " | ".join(cell(med[name]) if name in med else "-" for name in names)
              + f" | {ratio} |")
    errors = {f"{name} N={n}": m["error"] for n, res in results.items() for name, m in res["median"].items()
              if "error" in m}
    for what, error in errors.items():
        print(f"{what}: {error}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="1000,4000,16000",
                   help="comma-separated N (default 1000,4000,16000; empty with --bss2: the bss2 chip only)")
    p.add_argument("--reps", type=int, default=1, help="measured repetitions per program and size (default 1)")
    p.add_argument("--warmup", type=int, default=1, help="unmeasured runs of each first, per size (default 1)")
    p.add_argument("--brian-python", default=DEFAULT_BRIAN_PYTHON,
                   help=f"Python of the Brian2 venv (default {DEFAULT_BRIAN_PYTHON})")
    p.add_argument("--skip-brian", action="store_true", help="measure chipctl only")
    p.add_argument("--before", type=Path, default=None,
                   help="another checkout of chipctl to measure alongside (e.g. the code before a change)")
    p.add_argument("--bss2", action="store_true",
                   help=f"also a full {BSS2_CORES}-core bss2 chip (CUBA, 8192 neurons; chipctl only), and the "
                        f"same with {BSS2_FILL} inputs that fill the rows left free")
    p.add_argument("--json", action="store_true", help="print the results as one JSON object")
    p.add_argument("--out", type=Path, default=None, help="also write the JSON to this file")
    args = p.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    if (not sizes and not args.bss2) or min(sizes, default=5) < 5 or args.reps < 1 or args.warmup < 0:
        p.error("sizes must be >= 5 (none only with --bss2), --reps >= 1, --warmup >= 0")
    brian = None
    if not args.skip_brian:
        if Path(args.brian_python).exists():
            brian = args.brian_python
        else:
            sys.stderr.write(f"bench_scale: no Brian2 Python at {args.brian_python}; Brian2 skipped\n")
    before = args.before.resolve() if args.before is not None else None
    results = measure(sizes, args.reps, args.warmup, brian, before, bss2=args.bss2)
    doc = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
           "command": "python benchmarks/bench_scale.py " + " ".join(
               "<before>" if before is not None and a == str(args.before) else a
               for a in (argv if argv is not None else sys.argv[1:])),
           "sizes": sizes, "reps": args.reps, "warmup": args.warmup, "results": results}
    if args.out is not None:
        args.out.write_text(json.dumps(doc, indent=1) + "\n")
    if args.json:
        print(json.dumps(doc))
    else:
        print_table(results, args.reps)
    return 0


if __name__ == "__main__":
    sys.exit(main())
