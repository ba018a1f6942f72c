"""A review sent to Label Studio: each suspect task flagged in its data, flags taken down where nothing is open,
and one Data Manager tab, "Needs review", that lists the flagged tasks. Re-running sends nothing new."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from workbench.labelstudio import LabelStudio
from workbench.labelstudio.binding import bound_project
from workbench.project import Project
from workbench.review import flags, record
from workbench.review.find import ReviewResult
from workbench.sync.interface import label_hints, labeling_config

TAB_TITLE = "Needs review"
# Flagged tasks hold "needs a second look: ..." in data.review. "contains" gives exactly them whatever the first
# task of the project holds; "empty" does not (Label Studio checks the type of the first task's value).
TAB_FILTERS = {"conjunction": "and", "items": [
    {"filter": f"filter:tasks:data.{flags.FLAG_FIELD}", "operator": "contains", "type": "String",
     "value": flags.PREFIX.strip()},
]}  # fmt: skip


@dataclass
class FlagSummary:
    """What `push_flags` changed in Label Studio."""

    project_id: int
    flagged: int = 0  # tasks that carry a flag now
    newly: int = 0  # of those, tasks that had none before
    changed: int = 0  # tasks whose data was updated (a flag raised, changed or taken down)
    cleared: int = 0  # tasks whose flag was taken down: nothing open on them any more
    tab: str = "kept"  # the "Needs review" tab: created, updated or kept
    tab_url: str = ""
    interface_updated: bool = False
    missing_tasks: list[int] = field(default_factory=list)  # tasks of the snapshot no longer on the server


def push_flags(project: Project, client: LabelStudio, result: ReviewResult) -> FlagSummary:
    """Flag every task with open items, take down the flags that have nothing open any more, keep the tab."""
    project_id = bound_project(project, client)
    summary = FlagSummary(project_id=project_id, interface_updated=_show_flags(project, client, project_id))
    by_task: dict[int, list[dict[str, Any]]] = {}
    for item in result.items.to_dict(orient="records"):
        by_task.setdefault(int(item["task_id"]), []).append(record.plain(item))
    held = {task["id"]: task["data"] for task in client.tasks_data(project_id)}
    flagged_now = {task_id for task_id, data in held.items()
                   if data.get(flags.FLAG_FIELD) or (data.get(flags.RECORD_FIELD) or {}).get("items")}  # fmt: skip
    summary.missing_tasks = sorted(set(by_task) - set(held))
    moment = flags.now()
    for task_id in sorted((set(by_task) & set(held)) | flagged_now):
        task = client.task(task_id)  # fresh: an annotator may have submitted it again since the snapshot
        data = dict(task.get("data") or {})
        stamps = [str(a.get("updated_at") or "") for a in task.get("annotations") or [] if not a.get("was_cancelled")]
        new = flags.flagged_data(data, by_task.get(task_id, []), stamps, moment)
        if new.get(flags.FLAG_FIELD):
            summary.flagged += 1
            summary.newly += not data.get(flags.FLAG_FIELD)
        elif data.get(flags.FLAG_FIELD):
            summary.cleared += 1
        if new != data:
            client.update_task_data(task_id, new)
            summary.changed += 1
    summary.tab, view_id = _ensure_tab(client, project_id)
    summary.tab_url = f"{client.url}/projects/{project_id}/data?tab={view_id}"
    return summary


def _ensure_tab(client: LabelStudio, project_id: int) -> tuple[str, int]:
    """The project's one "Needs review" tab: created once, its filter put back if someone changed it."""
    wanted = {"title": TAB_TITLE, "filters": TAB_FILTERS}
    for view in client.views(project_id):
        if view["data"].get("title") == TAB_TITLE:
            if view["data"].get("filters") == TAB_FILTERS:
                return "kept", view["id"]
            client.update_view(project_id, view["id"], {**view["data"], **wanted})
            return "updated", view["id"]
    return "created", client.create_view(project_id, wanted)


def _show_flags(project: Project, client: LabelStudio, project_id: int) -> bool:
    """Give a project made before reviews existed the line that shows a flag; True if it had to be added."""
    setup = client.labeling_setup(project_id)
    if f'value="${flags.FLAG_FIELD}"' in setup["label_config"]:
        return False
    config = project.config
    guidelines = project.root / config.labelstudio.guidelines
    hints = label_hints(guidelines.read_text(encoding="utf-8"), config.labels) if guidelines.is_file() else {}
    interface = labeling_config(config.labels, hints=hints, model_version=setup["model_version"] or None)
    client.update_project(project_id, label_config=interface)
    return True
