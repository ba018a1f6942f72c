"""What a push would change, for a corpus of any size: only the articles that can touch a task are read whole and
reconciled (`reconcile`); every other paragraph is new, known by its row of the seed index, and read from its
article only when it is sent.

An article can touch a task when a task carries its name or the text of one of its paragraphs; any other article
matches no task by place or by text, so its paragraphs are new. One thing could still reach them: a live task
that nothing of its own article or of its text took, which a close edit anywhere may take. Then (a corpus whose
paragraphs were edited or removed) every article is read and reconciled, as it always was. The keys the other
paragraphs bring are checked to collide with no key given out; the plan is the one `reconcile` gives on the whole
corpus, with the new paragraphs in corpus order.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from workbench.articles import Article, SeedIndex
from workbench.labelstudio import LabelStudio
from workbench.preannotation.pool import choose_rows
from workbench.project import Project
from workbench.records import Paragraph, text_key
from workbench.sync.reconcile import Plan, Pushed, reconcile

# New paragraphs are read from their articles this many at a time while they are sent.
READ_ROWS = 1000


def pushed_tasks(client: LabelStudio, project_id: int) -> list[Pushed]:
    """The project's tasks that carry a workbench key, as the corpus sees them."""
    return pushed_of(client.tasks_data(project_id))


def pushed_of(tasks: Iterable[dict[str, Any]]) -> list[Pushed]:
    """The tasks (as `LabelStudio.tasks_data` lists them) that carry a workbench key, as the corpus sees them."""
    return [Pushed(task["id"], task["data"], task["submitted"], tuple(task["model_versions"]), task["skipped"])
            for task in tasks if task["data"].get("key")]  # fmt: skip


def plan_for(
    project: Project, seeds: SeedIndex, client: LabelStudio | None, project_id: int,
    pushed: list[Pushed] | None = None,
) -> tuple[Plan, list[Pushed]]:  # fmt: skip
    """What pushing the corpus of `seeds` would change in the project (nothing is changed here); the tasks are
    listed with `client` unless given (`[]` for a project made just now). The plan's `imports` are `Fresh`."""
    if pushed is None:
        assert client is not None
        pushed = pushed_tasks(client, project_id)
    table = seeds.paragraphs
    names = pa.array(sorted({task.doc_id for task in pushed}), pa.string())
    texts = pa.array(sorted({text_key(task.text) for task in pushed}), pa.string())
    touching = pc.or_(pc.is_in(table["doc_id"], value_set=names), pc.is_in(table["text_key"], value_set=texts))
    near = set(pc.unique(pc.filter(table["doc_id"], touching)).to_pylist())
    while True:
        articles = list(seeds.read_articles(near))
        plan = _reconcile(project, articles, pushed)
        whole = len(near) == len(seeds.doc_ids)
        if not whole and plan.open_tasks:  # a close edit anywhere may take a task: the whole corpus
            near = set(seeds.doc_ids)
            continue
        fresh = Fresh.of(seeds, near, articles, plan.imports)
        if whole or fresh.keys_are_new({task.key for task in pushed} | {p.key for p in plan.imports}):
            plan.imports = fresh  # type: ignore[assignment]
            return plan, pushed
        near = set(seeds.doc_ids)  # a key of an article not read is taken: the whole corpus gives it its variant


def _reconcile(project: Project, articles: list[Article], pushed: list[Pushed]) -> Plan:
    settings = project.config.corpus
    return reconcile(articles, pushed, edit_similarity=settings.edit_similarity, keep_retired=settings.keep_retired)


@dataclass
class Fresh(Sequence[Paragraph]):
    """The paragraphs no task holds, in the order they are to be sent: rows of the seed index, read from their
    articles a few at a time (the ones the plan made, keys and all, as it made them)."""

    seeds: SeedIndex
    rows: np.ndarray
    made: dict[int, Paragraph] = field(default_factory=dict)
    far: np.ndarray | None = None  # rows of articles not read (for the key check)

    @classmethod
    def of(cls, seeds: SeedIndex, near: set[str], articles: list[Article], imports: Sequence[Paragraph]) -> Fresh:
        """Every paragraph of the articles not in `near`, and the `imports` the plan made of those in it."""
        table = seeds.paragraphs
        inside = pc.is_in(table["doc_id"], value_set=pa.array(sorted(near), pa.string()))
        far = pc.invert(inside).to_numpy(zero_copy_only=False)
        read_rows = np.flatnonzero(~far)
        places = zip(pc.take(table["doc_id"], pa.array(read_rows)).to_pylist(),
                     pc.take(table["index"], pa.array(read_rows)).to_pylist(), strict=True)  # fmt: skip
        row_of = dict(zip(places, read_rows.tolist(), strict=True))
        made = {row_of[(p.doc_id, p.index)]: p for p in imports}
        chosen = far.copy()
        chosen[list(made)] = True
        return cls(seeds=seeds, rows=np.flatnonzero(chosen), made=made, far=np.flatnonzero(far))

    def keys_are_new(self, given: set[str]) -> bool:
        """The keys of the articles not read are all distinct and none is among `given`: each keeps its own."""
        if self.far is None or not len(self.far):
            return True
        keys = self.seeds.paragraphs["key"]
        taken = pc.is_in(keys, value_set=pa.array(sorted(given), pa.string())).to_numpy(zero_copy_only=False)
        if taken[self.far].any():
            return False
        return bool(self.seeds.keys_distinct) or pc.count_distinct(pc.take(keys, pa.array(self.far))).as_py() == len(
            self.far)  # fmt: skip

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, item):  # type: ignore[no-untyped-def,override]
        if isinstance(item, slice):
            return self._read(self.rows[item])
        return self._read(self.rows[item : item + 1 if item != -1 else None])[0]

    def __iter__(self) -> Iterator[Paragraph]:
        for start in range(0, len(self.rows), READ_ROWS):
            yield from self._read(self.rows[start : start + READ_ROWS])

    def choose(self, scores: np.ndarray, n: int, article_share: float) -> Fresh:
        """The `n` the model is least sure of (`pool.choose_next`), given each one's score (`rows` order), in the
        order chosen."""
        picked = choose_rows(scores, self.seeds.article_numbers()[self.rows], n, article_share)
        return Fresh(seeds=self.seeds, rows=self.rows[picked], made=self.made)

    def _read(self, rows: np.ndarray) -> list[Paragraph]:
        """The paragraphs at `rows`, read from their articles (the plan's own as it made them)."""
        table = self.seeds.paragraphs.take(pa.array(rows, pa.int64()))
        places = list(zip(table["doc_id"].to_pylist(), table["index"].to_pylist(), strict=True))
        wanted = {doc for (doc, _), row in zip(places, rows.tolist(), strict=True) if row not in self.made}
        found = {(p.doc_id, p.index): p for article in self.seeds.read_articles(wanted) for p in article.paragraphs}
        return [self.made.get(row) or found[place] for place, row in zip(places, rows.tolist(), strict=True)]
