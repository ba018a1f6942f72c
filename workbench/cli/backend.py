"""`workbench backend start | stop | status`: the model backend Label Studio calls, and the hidden `backend job`
that the backend starts when Start training is pressed."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from workbench import workflow
from workbench.cli.apps import app
from workbench.cli.output import current_project, guarded, note, out, print_json, state
from workbench.errors import ServerNotRunning

backend_app = typer.Typer(help="The model backend: the current model served to Label Studio (127.0.0.1), and the "
                               "training job behind its Start training button.")  # fmt: skip
app.add_typer(backend_app, name="backend")


@backend_app.command("start")
def backend_start(port: Annotated[int | None, typer.Option(help="Port on 127.0.0.1 (default: a free one).")] = None):
    """Start the model backend (or find it running) and connect it to the pushed project.

    Example: workbench backend start
    """
    project = current_project()
    started = guarded(lambda: workflow.backend_start(project, port=port, config=state.config))
    info = started.info
    verb = "started" if info.launched else "already running"
    out.print(f"Model backend {verb} at {info.url}, serving {info.model_version} (pid {info.pid}, "
              f"{info.seconds:.1f} s); log {info.log_file}")  # fmt: skip
    if started.connected is not None:
        out.print(f"Connected to the Label Studio project (Settings -> Model): {started.connected.state}")
    if started.note:
        note(started.note)


@backend_app.command("stop")
def backend_stop():
    """Stop the model backend and a training job it runs. Example: workbench backend stop"""
    project = current_project()
    stopped = guarded(lambda: workflow.backend_stop(project))
    out.print("Model backend stopped." if stopped else "Model backend was not running.")


@backend_app.command("status")
def backend_status(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False):
    """Whether the model backend runs and answers, what it serves, and its last training job.

    Example: workbench backend status --json
    """
    project = current_project()
    status = guarded(lambda: workflow.backend_status(project))
    if as_json:
        print_json(status.as_dict())
    elif status.running:
        out.print(f"running at {status.url}, serving {status.model_version or '(not answering)'}, healthy: "
                  f"{status.healthy} (log {status.log_file})")  # fmt: skip
    else:
        out.print("not running (start it with `workbench backend start`; Label Studio works without it)")
    job = status.job
    if job is not None and not as_json:
        ended = f", ended {job.finished_at}" if job.finished_at else ""
        out.print(f"training job {job.id}: {job.state} at its {job.stage} stage (started {job.started_at}"
                  f"{ended})" + (f"\n  {job.message}" if job.message else ""))  # fmt: skip
    if not status.running:
        raise typer.Exit(ServerNotRunning.exit_code)


@backend_app.command("job", hidden=True)
def backend_job(job_id: Annotated[str, typer.Option(help="The job's id, as the backend recorded it.")]):
    """The training job the backend starts when Start training is pressed (not for people: it waits for the
    backend's go on stdin). Its record and the backend's log say how it went."""
    raise typer.Exit(workflow.do_training_job(state.root, state.config, job_id))


def report_backend(pushed: Any) -> None:
    """After `push` (and `run`): where the model backend is connected, or why it is not."""
    if pushed.backend_url:
        out.print(f"model backend {pushed.backend_url} connected (Settings -> Model; Start training retrains)")
    if pushed.backend_note:
        note(pushed.backend_note)
