"""Run chipctl in a child process and measure it: exit code, stdout, stderr, CPU seconds and peak
resident memory of that child alone (a wrapper process reads its own RUSAGE_CHILDREN, so earlier
children of the test session do not count). A CPU-time limit (RLIMIT_CPU) bounds a runaway.

``peak_mb`` is the memory the child made, not the shared libraries it mapped: the peak resident
set less the file-backed part the child reports at exit (``RssFile``, Linux). How much of a mapped
library is resident depends on the page cache (a freshly installed numba/llvmlite maps ~60 MB more
of the same file than one installed earlier), which says nothing about what an input costs.
``peak_total_mb`` keeps the whole figure."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).parent.parent

_WRAPPER = """
import json, resource, subprocess, sys
limit = int(sys.argv[1])
def cap():
    resource.setrlimit(resource.RLIMIT_CPU, (limit, limit))
proc = subprocess.run(sys.argv[2:], preexec_fn=cap)
use = resource.getrusage(resource.RUSAGE_CHILDREN)
sys.stderr.write("\\n@@measure " + json.dumps({"rc": proc.returncode, "peak_mb": use.ru_maxrss / 1024,
                                              "cpu_s": use.ru_utime + use.ru_stime}) + "\\n")
"""


# the child: chipctl, reporting its file-backed resident memory when it exits
_CHILD = """
import atexit, sys
def _files():
    try:
        with open("/proc/self/status") as status:
            kb = [line.split()[1] for line in status if line.startswith("RssFile:")]
    except OSError:
        return
    if kb:
        sys.stderr.write("\\n@@files " + kb[0] + "\\n")
atexit.register(_files)
import cli
cli.app()
"""


@dataclass
class Measured:
    returncode: int
    stdout: str
    stderr: str
    peak_mb: float
    cpu_s: float
    peak_total_mb: float = 0.0


def run_chipctl(args: list[str], *, cpu_limit_s: int = 60, cwd: Path = ROOT, env=None, timeout: float = 600) -> Measured:
    cmd = [sys.executable, "-c", _WRAPPER, str(cpu_limit_s), sys.executable, "-c", _CHILD, *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout)
    stderr, _, tail = proc.stderr.rpartition("\n@@measure ")
    figures = json.loads(tail)
    files_mb = 0.0
    head, sep, files = stderr.rpartition("\n@@files ")
    if sep and files.strip().isdigit():
        stderr, files_mb = head, int(files) / 1024
    total = figures["peak_mb"]
    return Measured(figures["rc"], proc.stdout, stderr, total - files_mb, figures["cpu_s"], total)
