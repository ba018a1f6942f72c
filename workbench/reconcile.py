"""The corpus as it is now against what Label Studio holds: which paragraphs are new, edited, moved, renamed or
retired, and how annotated spans follow an edit.

Identity: a paragraph's key (its dataset row id) is given once, when the paragraph is first pushed, and kept
through every later rename, move and small edit; nothing recomputes it from the text again. Matching is done on
the text itself:

- an article is the seed file of the same name, or else (renamed) the one file whose paragraphs are all found,
  word for word, among the tasks of an article whose file is gone;
- within an article, a paragraph is the task with the same text, or else (edited) the task whose text is most
  similar to it, at least `edit_similarity` by `difflib` (1.0 = identical); anything less similar is a new
  paragraph, and the old task is retired;
- tasks left over (paragraphs deleted, files removed) are retired: tagged in their data, never deleted.

Everything here is pure: it turns lists into a plan, and `push` carries the plan out.
"""

from __future__ import annotations

import difflib
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from workbench.articles import Article
from workbench.records import Paragraph, Span, stable_hash, stamp_time

# The task data fields the corpus owns: a change in any of them is pushed to the task.
CORPUS_FIELDS = ("text", "doc_id", "paragraph", "paragraphs", "position", "offset", "title")


@dataclass(frozen=True)
class Pushed:
    """A task already in Label Studio, as the corpus sees it (and whether anyone submitted it, and which models
    predicted it)."""

    task_id: int
    data: Mapping[str, Any]
    submitted: int = 0
    model_versions: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return str(self.data.get("key") or "")

    @property
    def doc_id(self) -> str:
        return str(self.data.get("doc_id") or "")

    @property
    def text(self) -> str:
        return str(self.data.get("text") or "")

    @property
    def index(self) -> int | None:
        value = self.data.get("paragraph")
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    @property
    def retired(self) -> bool:
        return bool(self.data.get("retired"))


@dataclass(frozen=True)
class Update:
    """A task whose data must change: `data` is its whole new data (Label Studio replaces data, never merges)."""

    task_id: int
    data: dict[str, Any]
    old_text: str
    edited: bool = False
    moved: bool = False
    restored: bool = False


@dataclass
class Plan:
    """What a push does to bring Label Studio to the corpus; the counts are what `status` says."""

    imports: list[Paragraph] = field(default_factory=list)
    updates: list[Update] = field(default_factory=list)
    retirements: list[Update] = field(default_factory=list)
    renamed: dict[str, str] = field(default_factory=dict)  # old doc_id -> new doc_id
    unchanged: int = 0

    @property
    def edited(self) -> list[Update]:
        return [update for update in self.updates if update.edited]

    def counts(self) -> dict[str, int]:
        return {
            "new": len(self.imports),
            "edited": len(self.edited),
            "moved": sum(1 for u in self.updates if u.moved and not u.edited),
            "renamed_articles": len(self.renamed),
            "retired": len(self.retirements),
            "restored": sum(1 for u in self.updates if u.restored),
            "unchanged": self.unchanged,
        }


def reconcile(
    articles: Sequence[Article],
    pushed: Iterable[Pushed],
    *,
    edit_similarity: float = 0.8,
    keep_retired: bool = False,
    retired_reason: str = "no longer in the seeds",
) -> Plan:
    """The plan that makes Label Studio hold exactly the paragraphs of `articles`, each once."""
    by_doc: dict[str, list[Pushed]] = defaultdict(list)
    for task in sorted(pushed, key=lambda t: t.task_id):
        by_doc[task.doc_id].append(task)
    used_keys = {task.key for tasks in by_doc.values() for task in tasks}
    current = {article.doc_id for article in articles}
    plan = Plan()
    claimed: set[str] = set()
    for article in articles:
        old_doc = article.doc_id if article.doc_id in by_doc else _renamed_from(article, by_doc, current, claimed)
        if old_doc is not None:
            claimed.add(old_doc)
            if old_doc != article.doc_id:
                plan.renamed[old_doc] = article.doc_id
        tasks = by_doc.get(old_doc, []) if old_doc is not None else []
        pairs, new, left = match_paragraphs(article.paragraphs, tasks, edit_similarity)
        for paragraph, task in pairs:
            update = _update_for(paragraph, task)
            if update is None:
                plan.unchanged += 1
            else:
                plan.updates.append(update)
        for paragraph in new:
            key = _fresh_key(paragraph.key, used_keys)
            used_keys.add(key)
            plan.imports.append(_with_key(paragraph, key))
        if not keep_retired:
            plan.retirements += [_retired(task, retired_reason) for task in left if not task.retired]
    if not keep_retired:
        for doc_id, tasks in by_doc.items():
            if doc_id not in claimed:
                plan.retirements += [_retired(task, retired_reason) for task in tasks if not task.retired]
    return plan


def match_paragraphs(
    paragraphs: Sequence[Paragraph], tasks: Sequence[Pushed], edit_similarity: float
) -> tuple[list[tuple[Paragraph, Pushed]], list[Paragraph], list[Pushed]]:
    """Pair each paragraph with its task: the same text first (the same position preferred, then a live task),
    then the most similar live task at or above `edit_similarity`. Returns (pairs, new paragraphs, tasks left)."""
    free = list(tasks)
    pairs: list[tuple[Paragraph, Pushed]] = []
    unmatched: list[Paragraph] = []
    for paragraph in paragraphs:
        same = [task for task in free if task.text == paragraph.text]
        if same:
            task = min(same, key=lambda t: (t.index != paragraph.index, t.retired, t.task_id))
            free.remove(task)
            pairs.append((paragraph, task))
        else:
            unmatched.append(paragraph)
    candidates = sorted(
        (
            (-ratio, paragraph.index, task.task_id, paragraph, task)
            for paragraph in unmatched
            for task in free
            if not task.retired and (ratio := similarity(paragraph.text, task.text)) >= edit_similarity
        ),
        key=lambda c: c[:3],
    )
    taken_p: set[int] = set()
    taken_t: set[int] = set()
    for _, _, _, paragraph, task in candidates:
        if paragraph.index not in taken_p and task.task_id not in taken_t:
            taken_p.add(paragraph.index)
            taken_t.add(task.task_id)
            pairs.append((paragraph, task))
    new = [p for p in unmatched if p.index not in taken_p]
    left = [t for t in free if t.task_id not in taken_t]
    return sorted(pairs, key=lambda pair: pair[0].index), new, left


def similarity(a: str, b: str) -> float:
    """How alike two paragraph texts are, 0..1 (difflib's ratio; cheap upper bounds are tried first)."""
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    if matcher.real_quick_ratio() == 0 or matcher.quick_ratio() == 0:
        return 0.0
    return matcher.ratio()


def reanchor(old_text: str, new_text: str, spans: Iterable[Span]) -> tuple[list[Span], list[Span]]:
    """Spans of `old_text` carried to `new_text`: a span whose characters the edit left untouched moves to its
    new offsets (exactly the same text); a span the edit touches is held back, never guessed.

    Returns (moved, held)."""
    blocks = [
        (i1, i2, j1)
        for tag, i1, i2, j1, _ in difflib.SequenceMatcher(None, old_text, new_text, autojunk=False).get_opcodes()
        if tag == "equal"
    ]
    moved: list[Span] = []
    held: list[Span] = []
    for span in spans:
        block = next(((i1, j1) for i1, i2, j1 in blocks if i1 <= span.start and span.end <= i2), None)
        if block is None:
            held.append(span)
            continue
        start = span.start - block[0] + block[1]
        carried = Span(start, start + (span.end - span.start), span.label, span.text)
        if new_text[carried.start : carried.end] != span.text:  # cannot happen for an equal block; never trusted
            held.append(span)
        else:
            moved.append(carried)
    return moved, held


def confirmed(annotation: Mapping[str, Any], held: Mapping[str, str]) -> bool:
    """Whether an exported annotation counts after an edit of its task's text: it was not held back (see
    `carry`), or it was submitted again since (`updated_at` later than the time recorded in `held`)."""
    stamp = held.get(str(annotation.get("id")))
    if stamp is None:
        return True
    if not stamp:
        return False
    return stamp_time(annotation.get("updated_at")) > stamp_time(stamp)



def _renamed_from(
    article: Article, by_doc: Mapping[str, list[Pushed]], current: set[str], claimed: set[str]
) -> str | None:
    """The pushed article, whose file is gone, that holds every paragraph of `article` word for word."""
    wanted = Counter(paragraph.text for paragraph in article.paragraphs)
    candidates = []
    for doc_id, tasks in by_doc.items():
        if doc_id in current or doc_id in claimed:
            continue
        held = Counter(task.text for task in tasks)
        if all(held[text] >= n for text, n in wanted.items()):
            candidates.append((abs(sum(held.values()) - sum(wanted.values())), doc_id))
    return min(candidates)[1] if candidates else None


def _update_for(paragraph: Paragraph, task: Pushed) -> Update | None:
    """The task's new data if the paragraph differs from it in a field the corpus owns (or it was retired)."""
    wanted = paragraph.task_data()
    pending = bool(task.data.get("previous_text"))  # an edit that a killed push did not finish carrying
    changed = pending or any(task.data.get(name) != wanted[name] for name in CORPUS_FIELDS)
    if not changed and not task.retired:
        return None
    data = {**task.data, **{name: wanted[name] for name in CORPUS_FIELDS}, "key": task.key, "retired": ""}
    return Update(
        task_id=task.task_id,
        data=data,
        old_text=task.text,
        edited=pending or task.text != paragraph.text,
        moved=task.index != paragraph.index,
        restored=task.retired,
    )


def _retired(task: Pushed, reason: str) -> Update:
    return Update(task_id=task.task_id, data={**task.data, "retired": reason}, old_text=task.text)


def _fresh_key(key: str, used: set[str]) -> str:
    """`key`, or a variant of it when a task (a retired one, say) already holds that key."""
    candidate, n = key, 0
    while candidate in used:
        n += 1
        candidate = stable_hash(key, n)
    return candidate


def _with_key(paragraph: Paragraph, key: str) -> Paragraph:
    if key == paragraph.key:
        return paragraph
    return Paragraph(paragraph.doc_id, paragraph.index, paragraph.offset, paragraph.title, paragraph.text,
                     paragraph.count, key)  # fmt: skip
