"""The workbench's one exception tree.

The library raises these; only the CLI prints them (as one paragraph, no traceback) and exits non-zero.
Every message says what happened, names the thing, and says what to do next.
"""

from __future__ import annotations


class WorkbenchError(Exception):
    """Base of every error the workbench reports to a user."""

    exit_code = 1


class Interrupted(WorkbenchError):
    """The user pressed Ctrl-C: exit 130, as a shell reports a command ended by SIGINT."""

    exit_code = 130


class UsageError(WorkbenchError):
    """A command was called with arguments it cannot use (the same exit code as a usage error of the CLI)."""

    exit_code = 2


class OutputPathError(UsageError):
    """A file the user asked the workbench to write cannot be written where they said (no such folder, a folder
    by that name, no permission)."""


class ConfigError(WorkbenchError):
    """The config file is missing, malformed, or has invalid or unknown settings."""

    exit_code = 2


class SeedError(WorkbenchError):
    """An article in the seeds folder cannot be read as UTF-8 text, or the folder itself is unusable."""

    exit_code = 3


class ServerNotRunning(WorkbenchError):
    """`server status` found no running local server: exit 3, as an LSB init script's `status` says "not running"."""

    exit_code = 3


class ModelError(WorkbenchError):
    """The configured spaCy pipeline is not installed or cannot be loaded."""

    exit_code = 4


class ServerError(WorkbenchError):
    """The Label Studio server cannot be started, reached, or answered unexpectedly."""

    exit_code = 5


class AuthError(ServerError):
    """The Label Studio server rejected the credentials (wrong, revoked or expired token)."""


class LoginRefusedError(AuthError):
    """Label Studio's login form did not accept an e-mail and password."""


class DatabaseError(ServerError):
    """The local Label Studio's PostgreSQL database cannot be reached, refuses the login, or does not exist."""


class ProjectNotFoundError(ServerError):
    """The Label Studio project the workbench created is no longer on the server."""


class SnapshotError(WorkbenchError):
    """A snapshot is missing, or the export it holds is malformed."""

    exit_code = 6


class AlignmentError(WorkbenchError):
    """Annotated regions that match their text under no interpretation; the build refuses to drop them."""

    exit_code = 7

    def __init__(self, message: str, problems: list[dict] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


class ReleaseError(WorkbenchError):
    """A release cannot be cut or read: a bad or existing version, an empty dataset, or a changed file."""

    exit_code = 8


class ReleaseMismatchError(ReleaseError):
    """`release verify` found files (or a manifest) that differ from what the release recorded."""

    def __init__(self, version: str, problems: list[str]) -> None:
        listed = "".join(f"\n  - {problem}" for problem in problems)
        super().__init__(f"release {version} does not match its manifest:{listed}")
        self.version = version
        self.problems = problems


class BusyError(WorkbenchError):
    """Another workbench command holds the project's lock."""

    exit_code = 9


class WorkerError(WorkbenchError):
    """A worker process of a parallel stage died (killed, or out of memory) before finishing its share."""

    exit_code = 10


class ClusterWorkerError(WorkerError):
    """Dask workers died while holding pre-annotation work, more often than Dask retries it."""


class TrainError(WorkbenchError):
    """A model cannot be trained on a release: too few examples, other labels than the config's, a model there."""

    exit_code = 12


class ReviewOpenError(WorkbenchError):
    """A release was refused because review items are open and `[review] block_release` is true."""

    exit_code = 13


class MissingStepError(WorkbenchError):
    """A command needs what an earlier step makes, and that step has not run yet."""

    exit_code = 11


class NotPreannotatedError(MissingStepError):
    """`push` found paragraphs that `preannotate` has not pre-annotated."""


class NotPushedError(MissingStepError):
    """A command needs the Label Studio project, and nothing was pushed to one yet."""


class CorpusChangeError(WorkbenchError):
    """The seeds changed so that a push would retire paragraphs someone annotated or skipped; it retires them
    only when told to (`push --retire-annotated`)."""

    exit_code = 15


class ClusterError(WorkbenchError):
    """The Dask cluster cannot be reached, has no worker, or its workers cannot run the pipeline."""

    exit_code = 14


class ModelGuardError(WorkbenchError):
    """A model scored below the pipeline it would replace, on the same test split: not deployed unless forced."""

    exit_code = 16


class BackendError(WorkbenchError):
    """The model backend cannot be started, reached or connected to Label Studio, or refused a request."""

    exit_code = 17
