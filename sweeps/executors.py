"""Where a sweep's points run: one interface, two engines.

Job: an executor maps :func:`sweeps.point.run_point` over tasks and yields rows as they finish,
in whatever order they finish. :class:`LocalExecutor` runs them on this machine — in this process
with one worker, else in a pool of N processes; :class:`DaskExecutor` submits them to a Dask
``distributed`` cluster given its scheduler's address (``Client(address)``). The sweep does the
same thing with either; a point's row depends on its task only, never on the engine.

Boundary: executors know nothing of specs or tables; Dask is imported only by
:class:`DaskExecutor`, and its absence is a one-line ``ChipctlError`` naming the extra to install.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Callable, Iterable, Iterator, Protocol

from chip.errors import ChipctlError

from .point import Task, failed_row, run_point

__all__ = ["Executor", "LocalExecutor", "DaskExecutor", "make_executor", "DASK_MISSING"]

DASK_MISSING = "--scheduler needs Dask: pip install 'chipctl[cluster]' (dask[distributed])"



def _one_thread_per_worker() -> None:
    """A pool's worker keeps to its own core: its runs do not split batches across threads
    (unless CHIPCTL_THREADS says otherwise)."""
    os.environ.setdefault("CHIPCTL_THREADS", "1")

class Executor(Protocol):
    """Runs tasks, yields their rows as they finish."""

    name: str

    def run(self, tasks: Iterable[Task], fn: Callable[[Task], dict] = run_point) -> Iterator[dict]: ...

    def close(self) -> None: ...


class LocalExecutor:
    """``workers`` = 1: points run one after another in this process; more: a pool of processes
    (started fresh, not forked, so a worker never inherits a half-made compiled loop)."""

    def __init__(self, workers: int = 1):
        if workers < 1:
            raise ChipctlError(f"--workers must be >= 1, got {workers}")
        self.workers = workers
        self.name = "in-process" if workers == 1 else f"{workers} local processes"

    def run(self, tasks, fn=run_point):
        tasks = list(tasks)
        if self.workers == 1:
            for task in tasks:
                yield fn(task)
            return
        context = multiprocessing.get_context("spawn")
        queue = list(reversed(tasks))
        while queue:  # a pool whose process died is replaced; the points it had in flight are error rows
            with ProcessPoolExecutor(max_workers=min(self.workers, len(queue)), mp_context=context,
                                     initializer=_one_thread_per_worker) as pool:
                owner: dict = {}
                # keep the pool busy but not the whole sweep in flight: rows come back as points finish
                while queue and len(owner) < 2 * self.workers:
                    task = queue.pop()
                    owner[pool.submit(fn, task)] = task
                while owner:
                    done, _ = wait(list(owner), return_when=FIRST_COMPLETED)
                    broken = False
                    for future in done:
                        task = owner.pop(future)
                        broken |= isinstance(future.exception(), BrokenProcessPool)
                        yield _row(future, task)
                    if broken:
                        for future, task in owner.items():  # the pool is gone: so are these points
                            yield failed_row(task, "the point's worker failed: BrokenProcessPool: a process of "
                                                   "the pool died while this point or one beside it ran")
                        break
                    while queue and len(owner) < 2 * self.workers:
                        task = queue.pop()
                        owner[pool.submit(fn, task)] = task

    def close(self) -> None:
        pass


class DaskExecutor:
    """Points as Dask futures on the cluster at ``address`` (``tcp://HOST:PORT``)."""

    def __init__(self, address: str):
        try:
            from distributed import Client
        except ImportError:
            raise ChipctlError(DASK_MISSING) from None
        try:
            self.client = Client(address, timeout="10s")
        except (OSError, TimeoutError) as exc:
            raise ChipctlError(f"--scheduler {address}: cannot reach the Dask scheduler ({exc})") from None
        except ValueError as exc:
            raise ChipctlError(f"--scheduler {address}: {exc}") from None
        self.name = f"Dask cluster at {address}"

    def run(self, tasks, fn=run_point):
        from distributed import as_completed

        # pure=False: two points never share a cached result; the key names the point for dashboards
        owner = {self.client.submit(fn, task, pure=False, key=f"sweep-point-{task.index}-{id(self)}"): task
                 for task in tasks}
        for future in as_completed(list(owner)):
            try:
                yield _row(future, owner[future])
            finally:
                future.release()

    def close(self) -> None:
        self.client.close()


def _row(future, task: Task) -> dict:
    """The future's row; a point whose worker died (or whose pool broke) is an error row too."""
    try:
        return future.result()
    except Exception as exc:  # noqa: BLE001 - any engine failure of one point is that point's row
        return failed_row(task, f"the point's worker failed: {type(exc).__name__}: {exc}")


def make_executor(workers: int = 1, scheduler: str | None = None) -> Executor:
    if scheduler is not None:
        return DaskExecutor(scheduler)
    return LocalExecutor(workers)
