"""`workbench server ...` and `workbench annotators add`: the local Label Studio and the people who use it."""

from __future__ import annotations

from typing import Annotated

import typer

from workbench import workflow
from workbench.cli.apps import annotators_app, server_app
from workbench.cli.output import current_project, guarded, out, print_json
from workbench.errors import ServerNotRunning


# --- server ---------------------------------------------------------------------------------------------------
@server_app.command("start")
def server_start(port: Annotated[int | None, typer.Option(help="Port on 127.0.0.1 (default: a free one).")] = None):
    """Start the local Label Studio (or find it running) and mint an API token. Example: workbench server start"""
    project = current_project()
    info = guarded(lambda: workflow.server_start(project, port=port))
    verb = "started" if info.launched else "already running"
    out.print(f"Label Studio {verb} at {info.url} (pid {info.pid}, {info.seconds:.1f} s)")


@server_app.command("stop")
def server_stop():
    """Stop the local Label Studio and the model backend. Example: workbench server stop"""
    project = current_project()
    stopped, backend = guarded(lambda: workflow.server_stop(project))
    out.print(f"Label Studio {'stopped' if stopped else 'was not running'}.{' Model backend stopped.' * backend}")


@server_app.command("status")
def server_status(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False):
    """Show the local server's URL, version and health. Example: workbench server status --json"""
    project = current_project()
    status = guarded(lambda: workflow.server_status(project))
    if as_json:
        print_json(status.as_dict())
    elif status.running:
        out.print(
            f"running at {status.url}, Label Studio {status.version}, healthy: {status.healthy} "
            f"({status.serving}, database {status.database})"
        )
    else:
        out.print("not running (start it with `workbench server start`)")
    if not status.running:
        raise typer.Exit(ServerNotRunning.exit_code)



@annotators_app.command("add")
def annotators_add(email: Annotated[str, typer.Argument(help="The annotator's e-mail (their login).")]):
    """Create an annotator account that can log in; prints its one-time login.

    Example: workbench annotators add ann@example.org
    """
    project = current_project()
    login, url = guarded(lambda: workflow.add_annotator(project, email))
    out.print(f"Annotator account created: log in at {url} as {login.email} / {login.password}")
    out.print("This password is shown once; ask the annotator to change it under Account & Settings.")


