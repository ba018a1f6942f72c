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


class Aside:
    """A call running in a forked process while this process goes on with other work; `result()` waits for it.

    The child inherits what this process holds (copy-on-write), so nothing is pickled but the result. Where fork
    is not available, or with one usable core, the call runs here, at once."""

    def __init__(self, work: Callable[[], R]) -> None:
        self._process: Any = None
        if "fork" not in multiprocessing.get_all_start_methods() or usable_cores() < 2:
            self._value: Any = work()
            return
        context = multiprocessing.get_context("fork")
        self._reader, sender = context.Pipe(duplex=False)
        _asides.append(work)  # the child finds it here; this process keeps no reference to it once it started
        gc.freeze()  # the child does not scan (and so copy) what it inherits
        try:
            self._process = context.Process(target=_aside, args=(sender,), daemon=True)
            self._process.start()
        finally:
            gc.unfreeze()
            _asides.clear()
            sender.close()

    def result(self) -> Any:
        """The call's value, or its exception raised here; WorkerError if the process died."""
        if self._process is None:
            return self._value
        try:
            kind, value = self._reader.recv()
        except (EOFError, OSError):
            raise _died() from None
        finally:
            self._reader.close()
            self._process.join()
        if kind == "error":
            raise value
        return value


_asides: list[Callable[[], Any]] = []


def _aside(sender: Any) -> None:
    try:
        outcome: tuple[str, Any] = ("value", _asides[0]())
    except BaseException as exc:  # noqa: BLE001 - handed to the parent, which raises it
        outcome = ("error", exc)
    sender.send(outcome)
    sender.close()
