"""Which pipeline pre-annotates now, and which one `preannotate` uses when it is not told.

Every pre-annotation records the pipeline it ran (`.workbench/model.json`), with the `[model] name` of that moment:
that pipeline is the one pre-annotating now, the one any other must be compared with (`guard`). A deployed model
(`workbench preannotate --model M` that the guard let through, or forced; the backend's training job) stays in use
by `run`, `preannotate` and the backend while the config still names the pipeline it was recorded with; a new
`[model] name` is the user's choice, and `preannotate` takes it as a candidate that the guard checks.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from workbench.project import Project, atomic_write_json, read_json


@dataclass(frozen=True)
class Deployed:
    """A model recorded as the one pre-annotating, and why it was let in."""

    name: str  # as given: a package, or a folder relative to the project
    model_version: str
    config_name: str  # `[model] name` when it was deployed
    deployed_at: str
    verdict: str  # what the guard said ("better on release 0.2.0's test split: ...", "forced: ...")
    forced: bool = False


def deployed_path(project: Project) -> Path:
    return project.state_dir / "model.json"


def deployed(project: Project) -> Deployed | None:
    """The record of the pipeline that pre-annotated last, if there is one."""
    try:
        return Deployed(**read_json(deployed_path(project)))
    except (OSError, ValueError, TypeError):
        return None


def current_model(project: Project) -> str:
    """The pipeline pre-annotating now: the one recorded last, else `[model] name`."""
    record = deployed(project)
    return record.name if record is not None else project.config.model.name


def chosen_model(project: Project) -> str:
    """The pipeline `preannotate` runs when not told which: the recorded one while the config still names what it
    did then, else the config's (a new choice, which the guard compares with the current one)."""
    record = deployed(project)
    if record is not None and record.config_name == project.config.model.name:
        return record.name
    return project.config.model.name


def record_deployed(project: Project, name: str, model_version: str, verdict: str, *, forced: bool = False) -> None:
    """Record `name` as the pipeline pre-annotating now."""
    when = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    record = Deployed(name=name, model_version=model_version, config_name=project.config.model.name,
                      deployed_at=when, verdict=verdict, forced=forced)  # fmt: skip
    atomic_write_json(deployed_path(project), asdict(record))
