"""Pre-annotation on a real Dask cluster (a `dask scheduler` and `dask worker` processes on 127.0.0.1).

What a user relies on: the file written is byte for byte the local run's, each worker loads the pipeline once,
a worker killed mid-run changes nothing, and workers that keep dying fail the stage with one paragraph and leave
the previous pre-annotations as they were.
"""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import Result
from distributed import Client
from typer.testing import CliRunner

from tests.services import DaskCluster
from tests.support import REPO_ROOT, make_project
from workbench.cli import app
from workbench.config import ModelConfig
from workbench.preannotation import cluster as dask_cluster_module
from workbench.preannotation.cluster import loaded_pipelines
from workbench.project import Project

MODEL = ModelConfig().name


def make_seeded(root: Path, copies: int = 1, config: str = "") -> Project:
    """A project whose seeds are the repository's articles, `copies` times over, every paragraph made unique."""
    project = make_project(root, config=config, link_venv=False)
    project.seeds_dir.mkdir()
    for copy in range(copies):
        for path in sorted((REPO_ROOT / "seeds").glob("*.txt")):
            lines = path.read_text(encoding="utf-8").splitlines()
            text = "\n".join(f"{line} (Report {copy}.)" if line.strip() and copies > 1 else line for line in lines)
            (project.seeds_dir / f"{copy:03d}_{path.name}").write_text(text + "\n", encoding="utf-8")
    return project


def preannotate(project: Project, *args: str) -> Result:
    return CliRunner().invoke(app, ["-C", str(project.root), "preannotate", *args])


@pytest.fixture(scope="module")
def local_run(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The seeds pre-annotated on this machine, as everyone without a cluster does."""
    project = make_seeded(tmp_path_factory.mktemp("local"))
    result = preannotate(project)
    assert result.exit_code == 0, result.output
    return project.preannotations_file.read_bytes()


@pytest.fixture
def small_partitions(monkeypatch: pytest.MonkeyPatch) -> None:
    """Partitions of 8 paragraphs, so the seeds make several and their order is tested."""
    monkeypatch.setattr(dask_cluster_module, "PARTITION_SIZE", 8)


def test_the_cluster_writes_exactly_what_the_local_run_writes(
    dask_cluster: DaskCluster, local_run: bytes, small_partitions: None, tmp_path: Path
) -> None:
    project = make_seeded(tmp_path)
    result = preannotate(project, "--cluster", dask_cluster.address)
    assert result.exit_code == 0, result.output
    assert f"on the Dask cluster at {dask_cluster.address} (2 workers)" in result.output
    assert project.preannotations_file.read_bytes() == local_run


def test_the_cluster_set_in_the_config_is_used(
    dask_cluster: DaskCluster, local_run: bytes, small_partitions: None, tmp_path: Path
) -> None:
    project = make_seeded(tmp_path, config=f'[model]\ncluster = "{dask_cluster.address}"\n')
    result = preannotate(project)
    assert result.exit_code == 0, result.output
    assert "on the Dask cluster" in result.output
    assert project.preannotations_file.read_bytes() == local_run


def test_each_worker_loads_the_pipeline_once_across_runs(
    dask_cluster: DaskCluster, small_partitions: None, tmp_path: Path
) -> None:
    for run in ("first", "second"):
        result = preannotate(make_seeded(tmp_path / run), "--cluster", dask_cluster.address)
        assert result.exit_code == 0, result.output
    with Client(dask_cluster.address, set_as_default=False) as client:
        loaded = client.run(loaded_pipelines, MODEL)
    assert len(loaded) == 2
    assert {loads for _, loads in loaded.values()} == {1}


# ------------------------------------------------------------------------------------------ workers dying


def _kill_a_busy_worker(address: str, done: threading.Event) -> int | None:
    """SIGKILL the process of a worker while it runs a partition (its nanny starts a new one); its pid."""
    with Client(address, set_as_default=False) as client:
        while not done.is_set():
            busy = [worker for worker, keys in client.processing().items() if keys]
            if busy:
                pid = int(client.run(os.getpid, workers=busy[:1])[busy[0]])
                os.kill(pid, signal.SIGKILL)
                return pid
            time.sleep(0.02)
    return None


def _run_in_background(project: Project, address: str) -> tuple[threading.Thread, threading.Event, list[Result]]:
    results: list[Result] = []
    done = threading.Event()

    def run() -> None:
        try:
            results.append(preannotate(project, "--cluster", address))
        finally:
            done.set()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, done, results


@pytest.fixture(scope="module")
def big_local_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, bytes]:
    """~2,000 distinct paragraphs, pre-annotated locally: enough for a worker to be killed mid-run."""
    project = make_seeded(tmp_path_factory.mktemp("big-local"), copies=24)
    result = preannotate(project)
    assert result.exit_code == 0, result.output
    return 24, project.preannotations_file.read_bytes()


def test_a_worker_killed_mid_run_is_replaced_and_the_output_is_unchanged(
    dask_cluster: DaskCluster, big_local_run: tuple[int, bytes], tmp_path: Path
) -> None:
    copies, expected = big_local_run
    project = make_seeded(tmp_path, copies=copies)
    thread, done, results = _run_in_background(project, dask_cluster.address)
    killed = _kill_a_busy_worker(dask_cluster.address, done)
    thread.join()
    assert killed is not None, "the run ended before a worker could be killed"
    assert results[0].exit_code == 0, results[0].output
    assert project.preannotations_file.read_bytes() == expected
    with Client(dask_cluster.address, set_as_default=False) as client:
        client.wait_for_workers(2, timeout=60)  # the nanny's new worker is back for the tests after this one


def _stage_state(project: Project) -> dict[str, bytes]:
    """What pre-annotation keeps in the state folder, byte for byte. The seed index is left out: it is a cache of
    seeds/ as the folder is now (any command reading the seeds refreshes it), not something the stage produced."""
    return {path.name: path.read_bytes() for path in project.state_dir.iterdir()
            if not path.name.startswith(project.seed_index_file.stem)}  # fmt: skip


@pytest.fixture
def fragile_cluster() -> Iterator[DaskCluster]:
    """One worker, and a scheduler that gives up on a partition the first time a worker dies holding it."""
    cluster = DaskCluster(workers=1, env={"DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0"}).start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.mark.distributed
def test_workers_dying_past_the_retries_fail_the_stage_and_keep_nothing(
    fragile_cluster: DaskCluster, big_local_run: tuple[int, bytes], tmp_path: Path
) -> None:
    project = make_seeded(tmp_path, copies=1)
    assert preannotate(project).exit_code == 0  # an earlier, complete pre-annotation
    before = project.preannotations_file.read_bytes()
    state = _stage_state(project)  # the pool and its record
    shutil.rmtree(project.seeds_dir)
    make_seeded(tmp_path / "more", copies=big_local_run[0]).seeds_dir.rename(project.seeds_dir)

    thread, done, results = _run_in_background(project, fragile_cluster.address)
    killed = _kill_a_busy_worker(fragile_cluster.address, done)
    thread.join()
    assert killed is not None
    result = results[0]
    assert result.exit_code == 10, result.output
    assert result.output.startswith("error: Dask workers of the cluster at") and "Traceback" not in result.output
    assert "died while pre-annotating" in result.output and "kept nothing" in result.output
    assert project.preannotations_file.read_bytes() == before
    assert _stage_state(project) == state  # no part left


# ------------------------------------------------------------------------------------------ unusable clusters


@pytest.mark.distributed
def test_a_scheduler_without_workers_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dask_cluster_module, "WORKERS_WAIT_SECONDS", 2)
    empty = DaskCluster(workers=0).start()
    try:
        result = preannotate(make_seeded(tmp_path), "--cluster", empty.address)
    finally:
        empty.stop()
    assert result.exit_code == 14, result.output
    assert result.output.startswith(f"error: The Dask cluster at {empty.address} has no worker")
    assert "dask worker" in result.output and "Traceback" not in result.output
