"""Run chipctl in a child process and measure it: exit code, stdout, stderr, CPU seconds and peak
resident memory of that child alone (a wrapper process reads its own RUSAGE_CHILDREN, so earlier
children of the test session do not count). A CPU-time limit (RLIMIT_CPU) bounds a runaway."""

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


@dataclass
class Measured:
    returncode: int
    stdout: str
    stderr: str
    peak_mb: float
    cpu_s: float


def run_chipctl(args: list[str], *, cpu_limit_s: int = 60, cwd: Path = ROOT, env=None, timeout: float = 600) -> Measured:
    cmd = [sys.executable, "-c", _WRAPPER, str(cpu_limit_s), sys.executable, "-c", "import cli; cli.app()", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout)
    stderr, _, tail = proc.stderr.rpartition("\n@@measure ")
    figures = json.loads(tail)
    return Measured(figures["rc"], proc.stdout, stderr, figures["peak_mb"], figures["cpu_s"])
