"""Running netlist regression tests: find them, run each expectation run on the chip, report.

Job: find netlists with a top-level ``expect:`` key (cheaply, by their text), load each run's
netlist with the run's overrides (profile, seeds, batch), run it through
:class:`chip.host.HostInterface` for the run's duration, look up the golden entry, evaluate the
checks and return :class:`RunOutcome` records that print as readable diffs; and rewrite golden
files (``update_golden``). A caller may pass ``perturb_netlist(netlist)``, which returns a changed
netlist before the host is built (e.g. a projection's delay), and ``perturb(host)``, applied
through the host's public writes after loading and before the run — the hooks the tests use to
show that a changed chip fails the affected netlists.

Boundary: the chip is used through the host interface only; what the checks mean is
``expectations.py``, the golden format is ``golden.py``; nothing here knows pytest or typer
(``pytest_plugin.py`` and ``chipctl test`` are thin fronts over :func:`run_netlist`).
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from chip.errors import ChipctlError
from chip.host import HostInterface
from chip.netlist import Netlist
from chip.netlist import load_netlist
from .bounds import fmt_time
from .checks import Failure, RunContext
from .expectations import RunSpec, parse_expect
from .golden import GOLDEN_SUFFIX, GoldenRun, golden_path, golden_run, read_golden, run_key, write_golden_runs

__all__ = ["RunOutcome", "expect_line", "is_regression_netlist", "discover", "load_specs", "run_netlist",
           "verdict", "summary_line", "write_golden"]

Perturb = Callable[[HostInterface], None]
PerturbNetlist = Callable[[Netlist], Netlist]

_EXPECT = re.compile(r"^expect[ \t]*:", re.MULTILINE)
_YAML_SUFFIXES = (".yaml", ".yml")
_SKIP_DIRS = {".git", ".hg", ".svn", "__pycache__", "node_modules", ".venv", "venv", ".tox", ".nox",
              ".mypy_cache", ".pytest_cache", "build", "dist"}


def expect_line(path: str | Path) -> int | None:
    """Line of the top-level ``expect:`` key of a YAML file, None when it has none. Reads the text
    only (no YAML parsing): collection stays cheap however big the netlist is."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    match = _EXPECT.search(text)
    return None if match is None else text.count("\n", 0, match.start()) + 1


def is_regression_netlist(path: str | Path) -> bool:
    """A ``*.yaml``/``*.yml`` file (not a golden file) with a top-level ``expect:`` key."""
    path = Path(path)
    return (path.suffix in _YAML_SUFFIXES and not path.name.endswith(GOLDEN_SUFFIX) and path.is_file()
            and expect_line(path) is not None)


def discover(paths: Iterable[str | Path]) -> list[Path]:
    """Regression netlists in files and folders (recursively, skipping hidden and tool folders),
    sorted per folder. Raises ChipctlError for a missing path, a named file without ``expect:``,
    or when nothing is found."""
    found: list[Path] = []
    paths = [Path(p) for p in paths]
    for p in paths:
        if p.is_file():
            if not is_regression_netlist(p):
                raise ChipctlError(f"{p}: not a netlist with an expect: section")
            found.append(p)
        elif p.is_dir():
            hits = []
            for folder, dirs, files in os.walk(p):
                dirs[:] = [d for d in dirs if d not in _SKIP_DIRS and not d.startswith(".")]
                hits += [Path(folder) / f for f in files if is_regression_netlist(Path(folder) / f)]
            found += sorted(hits)
        else:
            raise ChipctlError(f"{p}: no such file or folder")
    if not found:
        raise ChipctlError(f"no netlists with an expect: section in {', '.join(str(p) for p in paths)}")
    return list(dict.fromkeys(found))


@dataclass(frozen=True)
class RunOutcome:
    """The verdict of one expectation run of one netlist. ``error`` is set (and nothing was
    checked) when the netlist, its expect block or its golden file is bad input."""

    file: str
    run: str
    config: str = ""
    checks: int = 0
    failures: tuple[Failure, ...] = ()
    error: str | None = None
    wall_s: float = 0.0
    golden_file: str | None = None
    slow: bool = False
    skipped: bool = False  # a slow run left out on request

    @property
    def passed(self) -> bool:
        return self.error is None and not self.failures

    @property
    def name(self) -> str:
        return f"{self.file}::{self.run}"

    def first_problem(self) -> str:
        if self.error is not None:
            return self.error
        if self.failures:
            f = self.failures[0]
            where = f"{self.file}:{f.line}: " if f.line else ""
            return f"{where}{f.one_line()}"
        return ""

    def headline(self) -> str:
        """The first problem in one line, and how many more there are."""
        if self.error is not None:
            return self.error
        more = len(self.failures) - 1
        return self.failures[0].one_line() + (f" (+{more} more)" if more > 0 else "") if self.failures else ""

    def report(self) -> str:
        """A readable account: the run, then each failed expectation with expected vs actual and
        the details (for spikes: where they first diverge from the golden)."""
        if self.error is not None:
            return f"{self.name}: bad input\n  {self.error}"
        if not self.failures:
            return f"{self.name} ({self.config}): {self.checks} checks passed"
        n = len(self.failures)
        head = f"{self.name} ({self.config}): {n} expectation{'s' if n != 1 else ''} failed"
        body = []
        for f in self.failures:
            body.extend("  " + line for line in f.lines(self.file))
        return "\n".join([head] + body)


def load_specs(path: str | Path) -> tuple[Netlist, list[RunSpec]]:
    """The netlist as written and its validated runs. Raises ChipctlError (FILE:LINE: ...)."""
    netlist = load_netlist(path)
    specs = parse_expect(netlist)
    if not specs:
        raise ChipctlError(f"{path}: the netlist has no expect: section")
    return netlist, specs


def _netlist_for(path, base: Netlist, spec: RunSpec) -> Netlist:
    if spec.profile is None and spec.die_seed is None and spec.noise_seed is None and spec.batch is None:
        return base
    return load_netlist(path, profile=spec.profile, die_seed=spec.die_seed, noise_seed=spec.noise_seed,
                        batch=spec.batch)


def _config(nl: Netlist, duration_us: float, batch: int) -> str:
    c = nl.chip
    return (f"profile {c.name}, die_seed {c.die_seed}, noise_seed {c.noise_seed}, "
            f"duration {fmt_time(duration_us / nl.time_factor_us())}, batch {batch}")


@dataclass
class _Done:
    outcome: RunOutcome
    golden: GoldenRun | None = None
    ctx: RunContext | None = field(default=None, repr=False)


def _run_one(path: Path, base: Netlist, spec: RunSpec, golden: dict[str, GoldenRun], gfile: Path,
             perturb: Perturb | None, keep_golden: bool, perturb_netlist: PerturbNetlist | None = None) -> _Done:
    start = time.perf_counter()
    file = str(path)
    try:
        nl = _netlist_for(path, base, spec)
        if perturb_netlist is not None:
            nl = perturb_netlist(nl)
        host = HostInterface(nl)
        if perturb is not None:
            perturb(host)
        result = host.run(duration_us=spec.duration_us(nl))
    except ChipctlError as exc:
        return _Done(RunOutcome(file, spec.name, error=exc.one_line(), wall_s=time.perf_counter() - start,
                                slow=spec.slow))
    key = run_key(nl, result.duration_us, result.batch)
    fresh = None
    if keep_golden and spec.uses_golden:
        fresh = golden_run(nl, result, spec.golden_populations())
        golden = {**golden, key: fresh}
    entry = golden.get(key)
    problem = None
    if entry is None and spec.uses_golden:
        known = ", ".join(sorted(golden)) or "none"
        problem = f"{gfile} has no run {key!r} (it has: {known})" if gfile.exists() else f"there is no {gfile}"
    ctx = RunContext(netlist=nl, result=result, golden=entry, golden_file=str(gfile), golden_key=key,
                     golden_problem=problem)
    failures = tuple(f for check in spec.checks for f in check.evaluate(ctx))
    outcome = RunOutcome(file, spec.name, config=_config(nl, result.duration_us, result.batch),
                         checks=len(spec.checks), failures=failures, wall_s=time.perf_counter() - start,
                         golden_file=str(gfile) if spec.uses_golden else None, slow=spec.slow)
    return _Done(outcome, fresh, ctx)


def run_netlist(path: str | Path, *, runs: Iterable[str] | None = None, perturb: Perturb | None = None,
                perturb_netlist: PerturbNetlist | None = None, update_golden: bool = False,
                slow: bool = True) -> list[RunOutcome]:
    """Run the expectation runs of one netlist (all, or those named in ``runs``) and judge them.
    With ``slow=False``, runs marked ``slow: true`` are not run (their outcomes say ``skipped``).

    ``perturb_netlist(netlist)`` returns the netlist each run's host is built from (the run's
    netlist, loaded with its overrides, goes in); ``perturb(host)`` is applied to each run's
    freshly loaded host before it runs.
    ``update_golden`` first makes each run's spikes its golden entry (for runs with a golden
    check) and writes the golden file — all runs: the file then holds exactly those entries;
    some runs: their entries are replaced and the others kept. Bad input (netlist, expect block,
    golden file) gives outcomes with ``error`` set, one per requested run."""
    path = Path(path)
    wanted = None if runs is None else list(runs)
    try:
        base, specs = load_specs(path)
        gfile = golden_path(base)
        golden = read_golden(gfile)
    except ChipctlError as exc:
        return [RunOutcome(str(path), name, error=exc.one_line()) for name in (wanted or ["expect"])]
    if wanted is not None:
        names = {s.name for s in specs}
        unknown = [w for w in wanted if w not in names]
        if unknown:
            return [RunOutcome(str(path), w, error=f"{path}: no expectation run named {w!r}; runs: "
                                                  f"{', '.join(sorted(names))}") for w in unknown]
        specs = [s for s in specs if s.name in wanted]
    done = [_Done(RunOutcome(str(path), spec.name, slow=True, skipped=True)) if spec.slow and not slow
            else _run_one(path, base, spec, golden, gfile, perturb, update_golden, perturb_netlist) for spec in specs]
    fresh = {d.golden.key: d.golden for d in done if d.golden is not None}
    if update_golden and fresh:
        # when every run was made the file holds exactly their entries (stale ones go); else merge
        complete = wanted is None and not any(d.outcome.skipped for d in done)
        write_golden_runs(gfile, base.name, fresh, replace_all=complete)
    return [d.outcome for d in done]


def verdict(outcomes: list[RunOutcome]) -> str:
    """``ERROR`` when any run had bad input, else ``FAIL`` when any failed, else ``SKIP`` when
    every run was a skipped slow one, else ``PASS``."""
    if any(o.error is not None for o in outcomes):
        return "ERROR"
    if any(o.failures for o in outcomes):
        return "FAIL"
    return "SKIP" if all(o.skipped for o in outcomes) else "PASS"


def summary_line(path: str | Path, outcomes: list[RunOutcome]) -> str:
    """One line per netlist: ``PASS file [runs] (time)``, ``FAIL file [run]: first failing
    expectation``, ``ERROR file [run]: the bad input`` or ``SKIP file [...]``."""
    wall = sum(o.wall_s for o in outcomes)
    made = ", ".join(o.run for o in outcomes if not o.skipped)
    skipped = ", ".join(o.run for o in outcomes if o.skipped)
    runs = "; ".join(part for part in (made, skipped and f"skipped slow: {skipped}") if part)
    status = verdict(outcomes)
    if status == "ERROR":
        o = next(o for o in outcomes if o.error is not None)
        return f"ERROR {path} [{o.run}]: {o.error}"
    if status == "FAIL":
        failed = [o for o in outcomes if o.failures]
        more = sum(len(x.failures) for x in failed) - 1
        return f"FAIL  {path} [{failed[0].run}]: {failed[0].first_problem()}" + (f" (+{more} more)" if more else "")
    return f"{status:<5} {path} [{runs}] ({wall:.1f} s)"


def write_golden(netlist: Netlist, result) -> Path:
    """Keep a run as its netlist's golden entry (``chipctl run --update-golden``); returns the
    golden file. Only the populations the netlist's golden checks compare are kept when they name
    some (all recorded ones otherwise); other runs in the file stay."""
    populations: set[str] | None = set()
    for spec in parse_expect(netlist):
        if not spec.uses_golden:
            continue
        pops = spec.golden_populations()
        if pops is None:
            populations = None
            break
        populations.update(pops)
    if not populations:
        populations = None
    run = golden_run(netlist, result, populations)
    return write_golden_runs(golden_path(netlist), netlist.name, {run.key: run})
