"""Worker processes for the CPU-bound stages (build, release files): every usable core when the work pays for it.

Workers are forked, so they inherit the loaded tokenizer and the release's Arrow columns without pickling them;
where fork is not available the work runs in this process. Results come back in submission order with only a few
chunks in flight, so memory does not grow with the input. A worker that dies (killed, out of memory) fails the
stage with a WorkerError instead of leaving it waiting for ever.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from workbench.errors import WorkerError

T = TypeVar("T")
R = TypeVar("R")

MAX_PROCESSES = 4


def usable_cores() -> int:
    """Cores this process may run on (CPU affinity, as a container sets it), not every core of the host."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def choose_processes(units: int, minimum: int, *, setting: int | str = "auto") -> int:
    """How many (forked) processes a stage should use: one where this platform cannot fork; else `setting` when
    it is a number; with "auto", every usable core (at most MAX_PROCESSES) once there are `minimum` units of work,
    and one process below that."""
    if "fork" not in multiprocessing.get_all_start_methods():
        return 1
    if setting != "auto":
        return max(1, int(setting))
    if units < minimum:
        return 1
    return max(1, min(usable_cores(), MAX_PROCESSES))


@contextlib.contextmanager
def fork_pool(
    processes: int, initializer: Callable[..., None] | None = None, initargs: tuple = ()
) -> Iterator[ProcessPoolExecutor]:
    """A pool of forked workers, all started when this returns (so they hold what this process holds now).

    Objects alive now are frozen out of garbage collection meanwhile, so the workers do not scan (and thereby
    copy) every page they inherit: at 10k tasks the build's workers used 4.7 CPU s without it and 3.8 with it."""
    gc.freeze()
    try:
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(processes, mp_context=context, initializer=initializer, initargs=initargs) as pool:
            pool.submit(int).result()  # with fork, the first task starts every worker
            yield pool
    except BrokenProcessPool:
        raise _died() from None
    finally:
        gc.unfreeze()


def ordered_map(pool: ProcessPoolExecutor, work: Callable[[T], R], items: Iterable[T], processes: int) -> Iterator[R]:
    """`work(item)` for every item in the pool, results in the items' order, at most 2 items per worker queued
    (`Pool.imap` and `Executor.map` read their whole input at once, which for a large snapshot is gigabytes)."""
    in_flight: deque[Future[Any]] = deque()
    try:
        for item in items:
            in_flight.append(pool.submit(work, item))
            if len(in_flight) > 2 * processes:
                yield in_flight.popleft().result()
        while in_flight:
            yield in_flight.popleft().result()
    except BrokenProcessPool:
        raise _died() from None
    finally:
        for future in in_flight:
            future.cancel()


def _died() -> WorkerError:
    return WorkerError(
        "A worker process stopped before finishing its share of the work (killed, or out of memory: see `dmesg`), "
        "so the command stopped and wrote nothing. Run it again; if it happens again, free memory: a release of "
        "100,000 paragraphs uses ~1.1 GB with its workers."
    )
