"""The `workbench` command and its groups, with the options every command takes (`-C`, `--config`, `--quiet`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from workbench.cli.output import set_options

app = typer.Typer(
    help="Turn raw articles into a versioned NER dataset: spaCy pre-annotation, Label Studio, HF datasets.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
server_app = typer.Typer(help="The local Label Studio server (127.0.0.1; SQLite under .workbench/, or PostgreSQL).")
annotators_app = typer.Typer(help="Annotator accounts on the Label Studio server.")
app.add_typer(server_app, name="server")
app.add_typer(annotators_app, name="annotators")


@app.callback()
def _options(
    project_dir: Annotated[Path, typer.Option("--project-dir", "-C", help="The project folder.")] = Path("."),
    config: Annotated[Path | None, typer.Option(help="Config file (default: configs/workbench.toml).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars (for scripts).")] = False,
) -> None:
    set_options(project_dir, config, quiet)
