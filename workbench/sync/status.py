"""What `workbench status` says: the labeling project's progress (tasks total, annotated, skipped, per
annotator), the pool, and what a push would do to bring Label Studio to the seeds (the plan, not carried out).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

import pyarrow.compute as pc

from workbench.articles import Corpus, SeedIndex
from workbench.labelstudio import LabelStudio
from workbench.labelstudio.binding import bound_project
from workbench.preannotation.pool import pooled
from workbench.project import Project
from workbench.sync.carry import preview_edit
from workbench.sync.plan import plan_for, pushed_of
from workbench.sync.snapshots import iter_tasks


def task_status(project: Project, client: LabelStudio) -> dict[str, Any]:
    """Live progress of the labeling project: tasks total, annotated, skipped, and per annotator; and what
    changed in the seeds since the last push (what the next push will do). The tasks are listed once (the plan and
    the totals); only the tasks someone annotated or skipped are exported, for who did what."""
    project_id = bound_project(project, client)
    corpus = SeedIndex.open(project.seeds_dir, project.seed_index_file)
    tasks = client.tasks_data(project_id)
    plan, pushed = plan_for(project, corpus, client, project_id, pushed_of(tasks))
    previews = [preview_edit(client, update) for update in plan.edited]
    live = [task for task in pushed if not task.retired]
    totals: Counter[str] = Counter(total=len(tasks))
    for task in tasks:
        kind = ("retired" if task["data"].get("retired") else "annotated" if task["submitted"]
                else "skipped" if task["skipped"] else "remaining")  # fmt: skip
        totals[kind] += 1
    per_annotator: dict[str, Counter[str]] = defaultdict(Counter)
    if totals["annotated"] or totals["skipped"]:
        emails = client.user_emails()
        with client.annotated_tasks(project_id) as view, client.export_stream(project_id, view=view) as (_, chunks):
            for task in iter_tasks(chunks, f"of project {project_id}"):
                if task["data"].get("retired"):
                    continue
                for annotation in task.get("annotations", []):
                    who = _who(annotation.get("completed_by"), emails)
                    per_annotator[who]["skipped" if annotation.get("was_cancelled") else "annotated"] += 1
    return {
        "project_id": project_id,
        "url": f"{client.url}/projects/{project_id}/data",
        "tasks": {key: totals.get(key, 0) for key in ("total", "annotated", "skipped", "remaining", "retired")},
        "annotators": {who: dict(counts) for who, counts in sorted(per_annotator.items())},
        "corpus_changes": plan.counts() | {
            "spans_carried": sum(p.moved for p in previews),
            "to_recheck": sum(1 for p in previews if p.held),
            "renamed": dict(plan.renamed),
            "retiring_annotated": dict(sorted(plan.retiring_annotated.items())),
        },
        "notes": corpus_notes(corpus),
        "pool": {
            "paragraphs": pooled_paragraphs(project, corpus),
            "in_label_studio": len(live),
            "annotated": sum(1 for task in live if task.submitted),
            "waiting": len(plan.imports),
        },
    }


def pooled_paragraphs(project: Project, corpus: Corpus | SeedIndex) -> int:
    """How many of the seeds' paragraphs the pool holds a pre-annotation of."""
    seeds = corpus if isinstance(corpus, SeedIndex) else SeedIndex.of_corpus(corpus)
    return int(pc.sum(pc.is_in(seeds.paragraphs["text_key"], value_set=pooled(project.preannotations_file))).as_py()
               or 0)  # fmt: skip


def corpus_notes(corpus: Corpus | SeedIndex) -> list[str]:
    """What a user should know about the seeds folder that is not an error."""
    notes = [f"article {duplicate} repeats {original} word for word; it was not imported."
             for duplicate, original in corpus.duplicates]  # fmt: skip
    notes += [f"{name} in the seeds folder is not read: only .txt files are articles." for name in corpus.ignored]
    return notes


def _who(completed_by: Any, emails: dict[int, str]) -> str:
    if isinstance(completed_by, dict):
        completed_by = completed_by.get("id")
    return emails.get(completed_by, f"user {completed_by}") if isinstance(completed_by, int) else "unknown"
