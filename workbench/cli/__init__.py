"""The `workbench` command line: each command parses its options, calls one `workflow` function and prints what
comes back. Errors from the library arrive as `WorkbenchError`s and are printed as one paragraph, with a non-zero
exit code and no traceback.

Modules: `apps` (the command and its groups), `output` (consoles, errors, progress, tables), and one module per
group of commands: `loop` (run, preannotate, push, pull, status), `releases`, `models`, `reports` (report,
review), `server` (server, annotators), `backend` (the model backend Label Studio calls).
"""

from __future__ import annotations

from workbench.cli import backend, loop, models, releases, reports, server  # noqa: F401  (each registers its commands)
from workbench.cli.apps import app

__all__ = ["app", "main"]


def main() -> None:
    app()
