"""The workbench's commands as library calls: each one opens what it needs, runs its stage, returns a result.

The CLI only parses options, calls one of these and prints what comes back; tests and scripts call them too.
Commands that change shared state (push, pull, release) hold the project lock, so two at once cannot collide.
The model backend's training job is one of them (`do_training_job`): the calls below, composed in one run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench import server
from workbench.articles import SeedIndex
from workbench.backend import connect as backend_connect
from workbench.backend import process as backend_process
from workbench.config import check_cluster_address
from workbench.errors import ModelGuardError, ReleaseMismatchError, UsageError
from workbench.labelstudio import LabelStudio
from workbench.labelstudio.accounts import AnnotatorLogin, create_annotator
from workbench.project import Project, read_json
from workbench.sync import status
from workbench.sync.pull import PullResult, pull
from workbench.sync.push import PushSummary, push

# The stages that load spaCy, datasets, pandas or matplotlib are imported by the commands that use them: a push or a
# pull starts in half the time and memory (1M-paragraph `push --next`, bench/README.md). `workbench.model` is one of
# them: importing any of its modules (even `model.deployed`) runs its __init__, which loads spaCy and the release.
if TYPE_CHECKING:
    from workbench import release
    from workbench.backend import job as backend_job
    from workbench.model import TrainResult
    from workbench.model.curve import Curve
    from workbench.preannotation.annotate import PreannotationSummary
    from workbench.report.latest import Report
    from workbench.review import find, send
    from workbench.rows.builder import Build
    from workbench.sync.snapshots import Snapshot

Progress = Callable[[int], None]


def open_project(root: Path, config: Path | None = None) -> Project:
    """The project in folder `root`, with its config (configs/workbench.toml unless `config` names another)."""
    return Project.open(root, config)


def client_for(project: Project) -> LabelStudio:
    """A client for the server this project uses: LABEL_STUDIO_URL/API_KEY if set, else the local one."""
    conn = server.connection(project)
    return LabelStudio(conn.url, conn.api_key)


# ---- the local server ------------------------------------------------------------------------------------------


def server_start(project: Project, *, port: int | None = None) -> server.ServerInfo:
    return server.start(project, port=port)


def server_stop(project: Project) -> tuple[bool, bool]:
    """Stop the model backend (with a training job it runs), then the local Label Studio; whether each ran."""
    backend_stopped = backend_process.stop(project)
    return server.stop(project), backend_stopped


def server_status(project: Project) -> server.ServerStatus:
    return server.status(project)


def backend_start(project: Project, *, port: int | None = None, config: Path | None = None) -> backend_connect.Started:
    """Start the model backend (or find it running) and, once the project was pushed, connect it there; `config`
    is the config file the backend and its training jobs read (the project's default when None)."""
    return backend_connect.start_connected(project, port=port, config=config)


def backend_stop(project: Project) -> bool:
    return backend_process.stop(project)


def backend_status(project: Project) -> backend_process.BackendStatus:
    return backend_process.status(project)


def add_annotator(project: Project, email: str) -> tuple[AnnotatorLogin, str]:
    """An annotator account that can log in, and the URL to log in at."""
    conn = server.connection(project)
    return create_annotator(conn.url, conn.api_key, email), f"{conn.url}/user/login/"


# ---- the pipeline ----------------------------------------------------------------------------------------------


def do_preannotate(
    project: Project,
    *,
    model: str | None = None,
    force: bool = False,
    cluster: str | None = None,
    progress: Progress | None = None,
) -> tuple[SeedIndex, PreannotationSummary]:
    """Pre-annotate the seeds with `model` (a package or a pipeline folder, such as one `workbench train` wrote),
    else with the pipeline in use (`model.deployed`); here, or on the Dask cluster at `cluster` (else
    `[model] cluster`). A pipeline other than the one pre-annotating now must not score below it (`model.guard`;
    ModelGuardError unless `force`); once it has run, it is the one pre-annotating."""
    if cluster:
        try:
            check_cluster_address(cluster)
        except ValueError as exc:
            raise UsageError(f"--cluster {exc}.") from None
    from workbench.model.deployed import chosen_model, current_model, deployed, record_deployed
    from workbench.model.guard import check_replacement
    from workbench.preannotation.annotate import preannotate

    corpus = seed_index(project)
    candidate = model or chosen_model(project)
    comparison, verdict = check_replacement(project, candidate, force=force)
    summary = preannotate(project.with_model(candidate), corpus, cluster=cluster, progress=progress)
    summary.verdict = verdict
    forced = force and comparison is not None and not comparison.better
    if comparison is not None or current_model(project) != candidate or deployed(project) is None:
        record_deployed(project, candidate, summary.model_version, verdict, forced=forced)  # kept: why it came in
    return corpus, summary


def seed_index(project: Project) -> SeedIndex:
    """The seeds folder's index, brought up to date (only the files changed since it was kept are read)."""
    return SeedIndex.open(project.seeds_dir, project.seed_index_file)


def do_push(
    project: Project,
    *,
    corpus: SeedIndex | None = None,
    next_n: int | None = None,
    retire_annotated: bool = False,
    progress: Progress | None = None,
    connect_backend: bool = True,
) -> tuple[SeedIndex, PushSummary]:
    """Push the corpus (read from the seeds folder unless the caller has just read it); with `next_n`, only the
    `next_n` new paragraphs the model is least sure of; annotated paragraphs gone from the seeds are retired only
    with `retire_annotated`. The model backend, when it runs, is connected to the project (once)."""
    corpus = corpus if corpus is not None else seed_index(project)
    with project.lock("workbench push"):
        client = client_for(project)
        summary = push(project, corpus, client, next_n=next_n, retire_annotated=retire_annotated,
                       progress=progress)  # fmt: skip
        if connect_backend:
            connected, summary.backend_note = backend_connect.connect_pushed(project, client, summary.project_id)
            summary.backend_url = connected.url if connected else ""
        return corpus, summary


def do_pull(project: Project, *, full: bool = False) -> PullResult:
    """A new snapshot: the changes since the last pull merged into it, or (`full`) one export of everything."""
    with project.lock("workbench pull"):
        return pull(project, client_for(project), full=full)


@dataclass(frozen=True)
class RunResult:
    """What `workbench run` did and where annotators go next (the login only for the local server)."""

    corpus: SeedIndex
    preannotation: PreannotationSummary
    push: PushSummary
    url: str
    username: str | None
    password: str | None


def do_run(project: Project, *, progress: Progress | None = None, config: Path | None = None) -> RunResult:
    """Start the local server and the model backend (unless an external server is configured), pre-annotate and
    push (which connects the backend to the project)."""
    local = server.external_connection() is None  # half of an external pair is refused here, before any start
    if local:
        server.start(project)
        backend_process.start(project, config_path=config)
    corpus, summary = do_preannotate(project, progress=progress)
    _, pushed = do_push(project, corpus=corpus, progress=progress)
    username = password = None
    if local:
        credentials = read_json(project.credentials_file)
        username, password = credentials.get("username"), credentials.get("password")
    return RunResult(corpus, summary, pushed, pushed.project_url, username, password)


# ---- reports -------------------------------------------------------------------------------------------------


# ---- models ----------------------------------------------------------------------------------------------------


def do_train(
    project: Project, version: str, *, force: bool = False, on_evaluation: Callable[[int, float], None] | None = None
) -> TrainResult:
    """Train a spaCy NER pipeline on release `version` into models/<dataset>/<version>/."""
    from workbench.model import train

    with project.lock("workbench train"):
        return train(project, version, force=force, on_evaluation=on_evaluation)


def do_report(project: Project, *, html: Path | None = None, progress: Progress | None = None) -> Report:
    """The latest snapshot's figures (nothing is written); with `html`, also the report page at that path (checked
    before the build, so a bad path is said at once)."""
    from workbench import release
    from workbench.model.curve import saved_curves
    from workbench.report.latest import build_report

    return build_report(project, html=html, progress=progress,
                        manifests=lambda: release.readable_manifests(project.releases_dir),
                        curves=lambda: saved_curves(project))  # fmt: skip


def task_status(project: Project) -> dict[str, Any]:
    """Labeling progress and what the next push would do (see `sync.status`)."""
    return status.task_status(project, client_for(project))


def corpus_notes(corpus: SeedIndex) -> list[str]:
    return status.corpus_notes(corpus)


def do_train_curve(project: Project, version: str, *, on_share: Callable[[float], None] | None = None) -> Curve:
    """Models trained on 25/50/75/100% of release `version`'s train split, scored on its test split: whether
    annotating more should still pay."""
    from workbench.model.curve import train_curve

    with project.lock("workbench train-curve"):
        return train_curve(project, version, on_share=on_share)


def models(project: Project) -> list[dict[str, Any]]:
    from workbench.model import list_models

    return list_models(project)


# ---- the training job behind Label Studio's Start training -----------------------------------------------------


def do_training_job(root: Path, config: Path | None, job_id: str) -> int:
    """Job `job_id`, started by the model backend when Start training was pressed (`workbench backend job`): the
    loop's commands as one run under the project lock (`backend.job.run` keeps its record); its exit code."""
    from workbench.backend import job as backend_job

    return backend_job.run(root, config, job_id, _training_stages)


def _training_stages(project: Project, job: backend_job.JobLog) -> tuple[str, dict[str, Any]]:
    """pull -> release (the next patch version, only when anything changed) -> train -> deploy: the trained model
    offered to the guard exactly as `preannotate --model` offers it (refused: the project keeps its model) ->
    pre-annotate with the pipeline in use when nothing was deployed -> push (the project's model version switches
    only to a deployed model). A CorpusChangeError of the push (annotated tasks to retire) fails the job."""
    from workbench.backend import job as backend_job

    with job.stage("pull"):
        pulled = do_pull(project)
    with job.stage("release"):
        version, cut = backend_job.release_to_train_on(project)
        if cut:
            do_release(project, version)
    result: dict[str, Any] = {"pull": pulled.lines(), "release": version, "new_release": cut, "deployed": False}
    trained = None
    if cut or not (project.models_dir / version).exists():
        with job.stage("train"):
            trained = do_train(project, version)
        result |= {"model": trained.path.relative_to(project.root).as_posix(), "f1": trained.trained.f1,
                   "model_version": trained.model_version, "current_model": trained.current,
                   "current_version": trained.current_version, "current_f1": trained.current_scores.f1}  # fmt: skip
    offered = backend_job.candidate(project, version)  # also one a stopped job trained and did not deploy
    corpus = summary = None
    if offered is not None:
        with job.stage("deploy"):
            try:
                corpus, summary = do_preannotate(project, model=offered)
                result |= {"deployed": True, "verdict": summary.verdict}
            except ModelGuardError as refused:
                result["refused"] = " ".join(str(refused).split())
    if corpus is None or summary is None:
        with job.stage("preannotate"):
            corpus, summary = do_preannotate(project)
    with job.stage("push"):
        _, pushed = do_push(project, corpus=corpus, connect_backend=False)  # the backend pressed is connected
    added = pushed.changes.get("predictions_added", 0)
    result |= {"served": summary.model_version, "imported": pushed.imported, "predictions_added": added}
    folder = (project.models_dir / version).relative_to(project.root).as_posix()
    return _training_message(version, folder, trained, result), result


def _training_message(version: str, folder: str, trained: TrainResult | None, result: dict[str, Any]) -> str:
    switched = (f"Deployed: {result['served']} pre-annotates from now on, and the {result['predictions_added']} "
                "task(s) nobody had annotated got its predictions.")  # fmt: skip
    if trained is None:
        said = (f"Nothing new to train on: the annotations have not changed since release {version}, and a model was "
                f"trained on it already ({folder}).")  # fmt: skip
        if result["deployed"]:
            return f"{said} It was not in use yet, and the guard let it in ({result['verdict']}). {switched}"
        return f"{said} The project is pushed with {result['served']}."
    scores = (f"test F1 {trained.trained.f1:.3f} against {trained.current_scores.f1:.3f} for "
              f"{trained.current_version}, the pipeline pre-annotating now")  # fmt: skip
    if result["deployed"]:
        return f"Trained {trained.model_version} on release {version}: {scores}. {switched}"
    return (f"Trained {trained.model_version} on release {version}: {scores}. Not better, so the current model "
            f"stays; the trained one is kept in {folder}.")  # fmt: skip


# ---- review -----------------------------------------------------------------------------------------------------


def do_review(
    project: Project,
    *,
    push: bool = False,
    progress: Progress | None = None,
    on_fold: Callable[[int, int], None] | None = None,
) -> tuple[find.ReviewResult, send.FlagSummary | None]:
    """The likely mistakes in the latest snapshot; with `push`, flagged in Label Studio for a second look."""
    with project.lock("workbench review"):
        from workbench.review import find, send

        result = find.review(project, progress=progress, on_fold=on_fold)
        return result, send.push_flags(project, client_for(project), result) if push else None


# ---- releases --------------------------------------------------------------------------------------------------


def do_release(
    project: Project, version: str, *, progress: Progress | None = None, reuse: bool = True
) -> release.ReleaseResult:
    """Cut release `version` from the latest snapshot into exports/<dataset>/<version>/, with the open review items
    among its rows counted in the manifest (`reuse=False` builds every row again, for a check)."""
    from workbench import release
    from workbench.review.record import release_summary

    def review(snapshot: Snapshot, table: Any, build: Build) -> dict[str, Any]:
        return release_summary(project, snapshot, table, build)

    return release.cut(project, version, review=review, progress=progress, reuse=reuse)


def verify(project: Project, version: str) -> None:
    """Recompute every checksum of a release; ReleaseMismatchError naming each file that differs."""
    from workbench import release

    problems = release.verify_release(project.releases_dir, version)
    if problems:
        raise ReleaseMismatchError(version, problems)


def diff(project: Project, a: str, b: str) -> dict[str, Any]:
    from workbench import release

    return release.diff_releases(project.releases_dir, a, b)


def releases(project: Project) -> list[dict[str, Any]]:
    from workbench import release

    return release.list_releases(project.releases_dir)




