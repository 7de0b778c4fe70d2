"""``import chipctl``: the README's Python example runs as written, every exported name resolves,
and importing the module alone loads nothing heavy."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _readme_section(title: str) -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, flags=re.S | re.M)
    assert match, f"README.md has no section {title!r}"
    return match.group(1)


def test_readme_python_example_runs_as_written():
    section = _readme_section("From Python")
    # the python block, then the block that shows its output
    [(code, shown)] = re.findall(r"^```python\n(.*?)^```\n\s*^```\n(.*?)^```$", section, flags=re.S | re.M)
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == shown


def test_every_exported_name_resolves():
    import chipctl
    from chip.host import HostInterface
    from rules import hookimpl

    assert chipctl.HostInterface is HostInterface and chipctl.hookimpl is hookimpl
    for name in chipctl.__all__:
        assert getattr(chipctl, name) is not None, name
    assert set(chipctl.__all__) <= set(dir(chipctl))
    assert issubclass(chipctl.CheckpointError, chipctl.ChipctlError)


def test_import_chipctl_is_cheap():
    code = "import sys, chipctl; print(sorted(m for m in ('numpy', 'numba', 'chip', 'rules') if m in sys.modules))"
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
