"""Timing and memory: each measurement runs in a fresh process, its RSS sampled in a thread while it works.

A fresh (spawned) process per measurement is what a user's `workbench <stage>` is, so its peak RSS is that
stage's own, not what earlier stages left behind; the untimed set-up (reading inputs) happens before the clock
starts. The Label Studio server's RSS is sampled the same way from the bench's own process.
"""

from __future__ import annotations

import multiprocessing
import os
import platform
import resource
import subprocess
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from importlib.metadata import version
from typing import Any

import psutil

MB = 1024 * 1024
# The timed work: returns how many units it handled (words, tasks, rows), or that and a dict of details.
Work = Callable[[], int | tuple[int, dict[str, Any]]]


class RssSampler:
    """Peak RSS of a process (and, apart, of its children) sampled every `interval` seconds in a thread."""

    def __init__(self, pid: int | None = None, *, interval: float = 0.05) -> None:
        self.process = psutil.Process(pid)
        self.interval = interval
        self.peak = self.children_peak = self.total_peak = self.window_peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    def sample(self) -> None:
        try:
            own = self.process.memory_info().rss
            children = sum(_rss(child) for child in self.process.children(recursive=True))
        except psutil.Error:
            return
        self.peak = max(self.peak, own)
        self.children_peak = max(self.children_peak, children)
        self.total_peak = max(self.total_peak, own + children)
        self.window_peak = max(self.window_peak, own + children)

    def take_window(self) -> float:
        """The peak (process and children) since the last call, in MB; starts a new window."""
        peak, self.window_peak = self.window_peak, 0
        return round(peak / MB, 1)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()


def _rss(process: psutil.Process) -> int:
    try:
        return int(process.memory_info().rss)
    except psutil.Error:
        return 0


def _measure(prepare: Callable[..., Work], args: tuple[Any, ...]) -> dict[str, Any]:
    """In the child: untimed set-up, then the timed work with RSS sampling."""
    # A spawned child inherits "spawn" as its start method; a user's command has the platform's default.
    multiprocessing.set_start_method(multiprocessing.get_all_start_methods()[0], force=True)
    work = prepare(*args)
    with RssSampler() as rss:
        began, cpu = time.perf_counter(), time.process_time()
        done = work()
        seconds, cpu = time.perf_counter() - began, time.process_time() - cpu
    count, details = done if isinstance(done, tuple) else (done, {})
    return {
        "details": details,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "count": count,
        "per_second": count / seconds,
        "peak_rss_mb": round(rss.peak / MB, 1),
        "children_peak_rss_mb": round(rss.children_peak / MB, 1),
    }


def isolated(prepare: Callable[..., Work], *args: Any) -> dict[str, Any]:
    """Run `prepare(*args)()` in a fresh interpreter and return its timing and peak memory."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(_measure, prepare, args).result()


def command(args: list[str], *, env: dict[str, str] | None = None, timeout: float = 3600) -> dict[str, Any]:
    """A `workbench` command run as a user runs it, in a process of its own: its wall time (interpreter start and
    imports included), its CPU time and its peak RSS (sampled every 50 ms), and the end of what it printed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    with RssSampler(process.pid) as rss:
        out, err = process.communicate(timeout=timeout)
    seconds = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if process.returncode:
        raise RuntimeError(f"{' '.join(args)} failed ({process.returncode}): {err[-2000:]}")
    return {
        "seconds": seconds,
        "cpu_seconds": round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 2),
        "peak_rss_mb": round(rss.peak / MB, 1),
        "output": out.strip().splitlines()[-12:],
    }


def machine(server_version: str | None) -> dict[str, Any]:
    """What the figures were taken on; the load average says whether the machine was shared at the time."""
    cpu = next(
        (line.split(":", 1)[1].strip() for line in _cpuinfo() if line.startswith("model name")), platform.machine()
    )
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "ram_gb": round(psutil.virtual_memory().total / 1024**3, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "versions": {
            **{name: version(name) for name in ("spacy", "label-studio-sdk", "datasets", "pyarrow")},
            "label-studio (server)": server_version,
        },
    }


def load_now() -> dict[str, Any]:
    """How busy the machine is right now (the bench shares it): `uptime` as printed, and the load averages."""
    return {"uptime": uptime(), "load_average": [round(x, 2) for x in os.getloadavg()]}


def uptime() -> str:
    """`uptime` as printed ("" if it cannot run)."""
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def _cpuinfo() -> list[str]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            return handle.read().splitlines()
    except OSError:
        return []
