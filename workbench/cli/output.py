"""What every command shares: the two consoles, the project from the global options, errors as one paragraph,
progress bars, tables and JSON.

Only the CLI prints. Library calls run inside `guarded`, which turns a `WorkbenchError` into its message and exit
code, with no traceback.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from workbench import workflow
from workbench.errors import Interrupted, WorkbenchError
from workbench.project import Project

# Markup off: messages carry user data ("[labelstudio -> batch_size]", file names) that must print verbatim.
out = Console(soft_wrap=True, markup=False)
err = Console(stderr=True, soft_wrap=True, markup=False, highlight=False)
T = TypeVar("T")
# Piped or in CI there is no terminal width to fit: tables take the width their cells need, never columns
# squeezed to the 80 characters rich assumes, so a line per row stays readable (and greppable).
PIPED_WIDTH = 10_000


class State:
    """The global options (`-C`, `--config`, `--quiet`) of this invocation."""

    root: Path = Path(".")
    config: Path | None = None
    quiet: bool = False


state = State()


def set_options(root: Path, config: Path | None, quiet: bool) -> None:
    state.root, state.config, state.quiet = root, config, quiet
    piped = not out.is_terminal and not os.environ.get("COLUMNS")  # a width the user set is kept
    out.width = PIPED_WIDTH if piped else None  # type: ignore[assignment]


def guarded(action: Callable[[], T]) -> T:
    """Run a library call; turn a WorkbenchError into a one-paragraph message and its exit code."""
    try:
        return action()
    except WorkbenchError as exc:
        err.print(Text.assemble(("error: ", "bold red"), str(exc)))
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        err.print(Text.assemble(("interrupted: ", "bold red"), "nothing half-written was kept; run it again."))
        raise typer.Exit(Interrupted.exit_code) from None


def current_project() -> Project:
    """The project the global options name, with its config checked."""
    return guarded(lambda: workflow.open_project(state.root, state.config))


@contextmanager
def progress_bar(description: str, total: int | None = None) -> Iterator[Callable[[int], None] | None]:
    """A progress bar on a terminal (nothing when piped or `--quiet`); yields the callback to advance it."""
    if state.quiet or not sys.stderr.isatty():
        yield None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.speed}/s"),
               TimeElapsedColumn())  # fmt: skip
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)


def new_table(*headers: str, title: str | None = None) -> Table:
    """A table whose cells wrap rather than being cut short, so a pipe or a narrow terminal loses nothing."""
    shown = Table(title=title)
    for header in headers:
        shown.add_column(header, overflow="fold")
    return shown


def print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def note(text: str, kind: str = "note") -> None:
    """A line on stderr that a user should read but that is not the command's result."""
    err.print(Text.assemble((f"{kind}: ", "bold yellow" if kind == "warning" else "yellow"), text))


def score(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, (int, float)) else "-"
