"""The import contract: who may import what, checked on the source (every import, lazy ones too).

1. Outside ``chip/`` — rules, the regression-test package, the pictures, the CLI, the ``chipctl``
   module, benchmarks and examples — nothing imports the emulator, the chip's configuration memory,
   the die, the readout models or the mapping's internals: they use ``chip.host`` (and the netlist,
   events, errors, profiles, units, analysis and the mapping's public entry points).
2. The compiled kernel modules import nothing from the project (numpy, numba, math and each other).
3. ``chip/`` never imports what is built on top of it (rules, regression, the pictures, the CLI).

Tests may import internals to unit-test them, so ``tests/`` is not checked. A violation fails
with the file, line and the import that breaks the rule.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _python(code: str):
    """Run ``code`` in a fresh interpreter from the project root (what a first import loads is
    only seen in a new process); it must exit 0. Returns the completed process."""
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    return res


# (1) modules nobody outside chip/ may import (a name or any of its submodules)
CHIP_INTERNALS = ("chip.emulator", "chip.state", "chip.die", "chip.readout", "chip.mapping.")
CLIENTS = ("rules", "regression", "pictures", "sweeps", "cli.py", "cli_sweep.py", "chipctl.py", "benchmarks",
           "examples")
# (2) the compiled kernel and what it may import
KERNEL_MODULES = ("chip/emulator/kernel.py", "chip/emulator/links.py")
KERNEL_ALLOWED = ("__future__", "math", "numpy", "numba", "chip.emulator.kernel", "chip.emulator.links")
# (3) what chip/ is the floor for
ABOVE_CHIP = ("rules", "regression", "pictures", "sweeps", "cli", "chipctl")


def _module_of(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path, root: Path = ROOT):
    """(line, imported module) for every import in a file, relative imports resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = _module_of(path, root)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - (node.level - 1)] if node.level > 1 else anchor
                base = ".".join(anchor + ([base] if base else []))
            yield node.lineno, base
            for alias in node.names:  # "from chip import die" imports the module chip.die
                sub = f"{base}.{alias.name}" if base else alias.name
                if _is_module(sub):
                    yield node.lineno, sub


def _is_module(name: str) -> bool:
    """Whether a dotted name is a module or package of the project (not a name inside one)."""
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _within(module: str, prefix: str) -> bool:
    """``module`` is ``prefix`` or inside it; a prefix ending in '.' means strictly inside."""
    if prefix.endswith("."):
        return module.startswith(prefix)
    return module == prefix or module.startswith(prefix + ".")


def violations(root: Path = ROOT) -> list[str]:
    found = []

    def files(where: str):
        p = root / where
        return [p] if p.is_file() else sorted(p.rglob("*.py")) if p.is_dir() else []

    for where in CLIENTS:
        for path in files(where):
            for line, module in imports(path, root):
                if any(_within(module, internal) for internal in CHIP_INTERNALS):
                    found.append(f"{path.relative_to(root)}:{line}: imports {module} "
                                 f"(chip internals; use chip.host)")
    for where in KERNEL_MODULES:
        for path in files(where):
            for line, module in imports(path, root):
                if not any(_within(module, allowed) for allowed in KERNEL_ALLOWED):
                    found.append(f"{path.relative_to(root)}:{line}: imports {module} "
                                 "(the compiled kernel imports nothing from the project)")
    for path in files("chip"):
        for line, module in imports(path, root):
            if any(_within(module, above) for above in ABOVE_CHIP):
                found.append(f"{path.relative_to(root)}:{line}: imports {module} "
                             "(chip/ is the floor: it never imports what is built on it)")
    return found


def test_the_project_keeps_its_import_contract():
    problems = violations()
    assert not problems, "import contract broken:\n" + "\n".join(problems)


@pytest.mark.parametrize("where, text, rule", [
    ("rules/bad_rule.py", "from chip.die import Die\n", "chip internals"),
    ("rules/bad_rule.py", "def f():\n    import chip.emulator.kernel\n", "chip internals"),
    ("regression/bad.py", "from chip.state import ChipState\n", "chip internals"),
    ("pictures/bad.py", "from chip.readout import Trace\n", "chip internals"),
    ("cli.py", "from chip.mapping.rows import _assign_rows\n", "chip internals"),
    ("chip/emulator/kernel.py", "from ..errors import RunError\n", "imports nothing from the project"),
    ("chip/host.py", "from rules.training import Trainer\n", "chip/ is the floor"),
])
def test_a_deliberate_violation_is_caught(tmp_path, where, text, rule):
    target = tmp_path / where
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    problems = violations(tmp_path)
    assert len(problems) == 1 and rule in problems[0] and problems[0].startswith(where), problems


def test_public_entry_points_are_allowed(tmp_path):
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "ok.py").write_text(
        "from chip.host import HostInterface\nfrom chip.mapping import map_netlist\nfrom chip.netlist import Netlist\n"
        "from chip import analysis\n")
    assert violations(tmp_path) == []


def test_a_run_does_not_import_scipy_linalg_and_compiled_dot_still_works():
    """numba's BLAS probe is skipped (chip.numba_start): a run loads no scipy.linalg, and compiled
    code that does use np.dot afterwards still gets it (scipy imported on demand)."""
    code = (
        "import sys\n"
        "from chip.host import HostInterface\n"
        "h = HostInterface.from_file('netlists/single_neuron.yaml')\n"
        "h.run()\n"
        "assert 'scipy.linalg' not in sys.modules, 'a run imported scipy.linalg'\n"
        "import numpy as np\n"
        "from numba import njit\n"
        "dot = njit(lambda a, b: np.dot(a, b))\n"
        "assert dot(np.arange(3.0), np.arange(3.0)) == 5.0\n"
    )
    _python(code)


def test_runs_and_mapping_reports_do_not_import_networkx_but_the_graph_is_networkx():
    """Routes, the link model's order and the mapping summary come from chip.mapping.routing's
    Network (~0.25 s and ~20 MB of import saved per run); ``MappedChip.graph`` still is a
    networkx DiGraph, made when asked."""
    code = (
        "import sys\n"
        "from chip.host import HostInterface\n"
        "from chip.mapping import graph_summary\n"
        "for path in ('netlists/single_neuron.yaml', 'netlists/cuba.yaml'):\n"
        "    h = HostInterface.from_file(path)\n"
        "    h.run(duration_us=20.0)\n"
        "    graph_summary(h.mapped)\n"
        "assert 'networkx' not in sys.modules, 'a run imported networkx'\n"
        "assert type(h.mapped.graph).__name__ == 'DiGraph' and 'networkx' in sys.modules\n"
    )
    _python(code)


def test_a_cli_run_does_not_import_pydantic_and_bad_values_read_as_before():
    """``chipctl run FILE`` coerces its parameters without typer's pydantic adapters (~0.1 s of
    every command): a plain path and options left unset need none (cli._coerce_without_pydantic).
    A value given to any other option still goes through typer's own adapter, with its message."""
    import subprocess
    import sys

    typer_coercion = pytest.importorskip("typer._coercion", reason="a typer without pydantic adapters")
    del typer_coercion
    code = (
        "import sys, cli\n"
        "sys.argv = ['chipctl', 'run', 'netlists/single_neuron.yaml', '--json']\n"
        "try:\n"
        "    cli.main()\n"
        "except SystemExit as exc:\n"
        "    assert exc.code in (0, None), exc.code\n"
        "assert 'pydantic' not in sys.modules, 'a run imported pydantic'\n"
    )
    res = _python(code)
    assert '"spikes"' in res.stdout
    for args, message in ((["--batch", "0"], "Invalid value for '--batch': Input should be greater than or equal to 1"),
                          (["--die-seed", "x"], "Invalid value for '--die-seed': Input should be a valid integer")):
        res = subprocess.run([sys.executable, "-m", "cli", "run", "netlists/single_neuron.yaml", *args], cwd=ROOT,
                             capture_output=True, text=True, timeout=300)
        assert res.returncode == 2 and message in res.stderr, res.stderr


def test_a_cli_run_pauses_the_collector_only_for_its_start_up():
    """In chipctl's own process, ``run`` imports the chip with the cyclic garbage collector paused
    and then freezes what the imports made (cli._start_up_done): afterwards the collector runs
    again. An app called inside another process (typer's test runner here) changes nothing."""
    code = (
        "import gc, sys, cli\n"
        "seen = {}\n"
        "real = cli._load\n"
        "def load(*a):\n"
        "    seen['paused'] = not gc.isenabled()\n"
        "    nl = real(*a)\n"
        "    seen['after'] = gc.isenabled()\n"
        "    return nl\n"
        "cli._load = load\n"
        "sys.argv = ['chipctl', 'run', 'netlists/single_neuron.yaml', '--json']\n"
        "try:\n"
        "    cli.main()\n"
        "except SystemExit as exc:\n"
        "    assert exc.code in (0, None), exc.code\n"
        "assert seen == {'paused': True, 'after': True}, seen\n"
        "assert gc.isenabled() and gc.get_freeze_count() > 10000, gc.get_freeze_count()\n"
    )
    _python(code)

    import gc

    from typer.testing import CliRunner

    import cli

    frozen = gc.get_freeze_count()
    assert gc.isenabled()
    result = CliRunner().invoke(cli.app, ["run", str(ROOT / "netlists" / "single_neuron.yaml"), "--json"])
    assert result.exit_code == 0, result.output
    assert gc.isenabled() and gc.get_freeze_count() == frozen
    # the app called with its arguments (as the hostile-input tests do) is another program's too
    with pytest.raises(SystemExit) as exit_:
        cli.app(args=["run", str(ROOT / "netlists" / "single_neuron.yaml"), "--json"], prog_name="chipctl")
    assert exit_.value.code == 0
    assert gc.isenabled() and gc.get_freeze_count() == frozen
