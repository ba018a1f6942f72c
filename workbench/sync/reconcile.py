"""The corpus as it is now against what Label Studio holds: which paragraphs are new, edited, moved, renamed or
retired, and how annotated spans follow an edit.

Identity: a paragraph's key (its dataset row id) is given once, when the paragraph is first pushed, and kept
through every later rename, move and small edit; nothing recomputes it from the text again. Matching is done on
the text itself:

- an article is the seed file of the same name, or else (renamed) the one file whose paragraphs are all found,
  word for word, among the tasks of an article whose file is gone;
- a paragraph is the task with the same text in its article, or else the task with the same text in any article
  (moved, split off, merged in), or else (edited) the task whose text is most similar to it, at least
  `edit_similarity` by `difflib` (1.0 = identical), in its article first, then in any; anything less similar is a
  new paragraph. So a rename with an edit, a split and a merge keep every paragraph's task and annotations;
- tasks left over (paragraphs deleted, files removed) are retired: tagged in their data, never deleted. The plan
  names the ones someone annotated or skipped (`retiring_annotated`), and `push` retires those only when told to.

Everything here is pure: it turns lists into a plan, and `push` carries the plan out.
"""

from __future__ import annotations

import difflib
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from workbench.articles import Article
from workbench.records import Paragraph, Span, stable_hash

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
    skipped: int = 0

    @property
    def annotated(self) -> bool:
        """Someone submitted or skipped it: work a retirement would take out of the next release."""
        return self.submitted > 0 or self.skipped > 0

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
    # paragraphs found again in another article (split, merged, moved): old doc_id -> {new doc_id: paragraphs}
    across: defaultdict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    # tasks someone annotated (or skipped) that the plan would retire, by article: `push` asks before it does
    retiring_annotated: Counter[str] = field(default_factory=Counter)
    # live tasks no paragraph of their own article or of the same text took: a close edit anywhere may take them
    open_tasks: int = 0

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
            "retired_annotated": sum(self.retiring_annotated.values()),
            "moved_across_articles": sum(n for counts in self.across.values() for n in counts.values()),
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
    """The plan that makes Label Studio hold exactly the paragraphs of `articles`, each once.

    Paragraphs are matched to tasks in four passes, the surest first: the same text in the same article (or the
    article it was renamed from), the same text anywhere among the tasks still unmatched, then a close edit in the
    same article, then a close edit anywhere (among the tasks of the articles the paragraph's neighbours came from,
    or every unmatched task when that is cheap). So a paragraph keeps its task, key and annotations whatever file
    it now stands in: renamed and edited at once, split into two files, or merged from two."""
    by_doc: dict[str, list[Pushed]] = defaultdict(list)
    for task in sorted(pushed, key=lambda t: t.task_id):
        by_doc[task.doc_id].append(task)
    used_keys = {task.key for tasks in by_doc.values() for task in tasks}
    current = {article.doc_id for article in articles}
    plan = Plan()
    claimed: set[str] = set()
    matcher = _Matcher(edit_similarity)
    for article in articles:
        old_doc = article.doc_id if article.doc_id in by_doc else _renamed_from(article, by_doc, current, claimed)
        if old_doc is not None:
            claimed.add(old_doc)
            if old_doc != article.doc_id:
                plan.renamed[old_doc] = article.doc_id
        matcher.add(article, by_doc.get(old_doc, []) if old_doc is not None else [])
    for doc_id, tasks in by_doc.items():
        if doc_id not in claimed:
            matcher.add_unclaimed(tasks)
    pairs, new, left = matcher.match()
    plan.open_tasks = matcher.open_tasks
    for paragraph, task in pairs:
        update = _update_for(paragraph, task)
        if update is None:
            plan.unchanged += 1
        else:
            plan.updates.append(update)
        if task.doc_id != paragraph.doc_id and plan.renamed.get(task.doc_id) != paragraph.doc_id:
            plan.across[task.doc_id][paragraph.doc_id] += 1
    for paragraph in new:
        key = _fresh_key(paragraph.key, used_keys)
        used_keys.add(key)
        plan.imports.append(_with_key(paragraph, key))
    if not keep_retired:
        plan.retirements = [_retired(task, retired_reason) for task in left if not task.retired]
        plan.retiring_annotated = Counter(task.doc_id for task in left if not task.retired and task.annotated)
    _renames_with_edits(plan, current, set(by_doc))
    return plan


class _Matcher:
    """Paragraphs and tasks gathered article by article, then paired in the four passes `reconcile` describes."""

    def __init__(self, edit_similarity: float) -> None:
        self.edit_similarity = edit_similarity
        self.groups: list[tuple[Article, list[Pushed]]] = []
        self.unclaimed: list[Pushed] = []
        self.open_tasks = 0

    def add(self, article: Article, tasks: list[Pushed]) -> None:
        self.groups.append((article, list(tasks)))

    def add_unclaimed(self, tasks: list[Pushed]) -> None:
        self.unclaimed += tasks

    def match(self) -> tuple[list[tuple[Paragraph, Pushed]], list[Paragraph], list[Pushed]]:
        """(pairs in corpus order, paragraphs no task holds, tasks no paragraph holds)."""
        pairs: dict[tuple[str, int], Pushed] = {}
        waiting: list[tuple[Article, list[Paragraph], list[Pushed]]] = []
        for article, tasks in self.groups:  # 1: the same text in the same article
            found, rest, left = _same_text(article.paragraphs, tasks)
            pairs.update(found)
            waiting.append((article, rest, left))
        pool = [task for _, _, left in waiting for task in left] + self.unclaimed
        unmatched = [p for _, rest, _ in waiting for p in rest]
        found, unmatched, pool = _same_text(unmatched, pool)  # 2: the same text anywhere
        pairs.update(found)
        still = {_place(p) for p in unmatched}
        taken = {task.task_id for task in pairs.values()}
        for _, rest, left in waiting:  # 3: a close edit in the same article
            here = [p for p in rest if _place(p) in still]
            found = _similar(here, [t for t in left if t.task_id not in taken], self.edit_similarity)
            pairs.update(found)
            taken |= {task.task_id for task in found.values()}
            still -= set(found)
        pool = [task for task in pool if task.task_id not in taken]
        self.open_tasks = sum(1 for task in pool if not task.retired)
        unmatched = [p for p in unmatched if _place(p) in still]
        found = self._similar_anywhere(unmatched, pool, pairs)  # 4: a close edit anywhere
        pairs.update(found)
        taken |= {task.task_id for task in found.values()}
        order = [p for article, _ in self.groups for p in article.paragraphs]
        matched = [(p, pairs[_place(p)]) for p in order if _place(p) in pairs]
        new = [p for p in order if _place(p) not in pairs]
        every = [task for _, tasks in self.groups for task in tasks] + self.unclaimed
        left = sorted({task.task_id: task for task in every if task.task_id not in taken}.values(),
                      key=lambda t: t.task_id)  # fmt: skip
        return matched, new, left

    def _similar_anywhere(
        self, paragraphs: list[Paragraph], tasks: list[Pushed], pairs: Mapping[tuple[str, int], Pushed]
    ) -> dict[tuple[str, int], Pushed]:
        """Close edits across articles: among every unmatched task when there are few enough pairs to compare,
        else among the tasks of the articles the paragraph's article already took tasks from."""
        live = [task for task in tasks if not task.retired]
        if not paragraphs or not live:
            return {}
        if len(paragraphs) * len(live) <= MAX_PAIRS_COMPARED:
            return _similar(paragraphs, live, self.edit_similarity)
        sources: dict[str, set[str]] = defaultdict(set)
        for (doc_id, _), task in pairs.items():
            sources[doc_id].add(task.doc_id)
        found: dict[tuple[str, int], Pushed] = {}
        by_doc: dict[str, list[Pushed]] = defaultdict(list)
        for task in live:
            by_doc[task.doc_id].append(task)
        by_article: dict[str, list[Paragraph]] = defaultdict(list)
        for paragraph in paragraphs:
            by_article[paragraph.doc_id].append(paragraph)
        for doc_id, group in by_article.items():
            taken = {task.task_id for task in found.values()}
            near = [t for d in sorted(sources[doc_id]) for t in by_doc.get(d, []) if t.task_id not in taken]
            found.update(_similar(group, near, self.edit_similarity))
        return found


# Across articles, every unmatched paragraph is compared with every unmatched task up to this many pairs; beyond,
# only with the tasks of the articles its article's other paragraphs came from (a corpus replaced wholesale).
MAX_PAIRS_COMPARED = 200_000


def _place(paragraph: Paragraph) -> tuple[str, int]:
    return (paragraph.doc_id, paragraph.index)


def _same_text(
    paragraphs: Sequence[Paragraph], tasks: Sequence[Pushed]
) -> tuple[dict[tuple[str, int], Pushed], list[Paragraph], list[Pushed]]:
    """Each paragraph paired with a task of the same text: the same article and position preferred, then a live
    task, then the oldest. Returns (pairs, paragraphs left, tasks left)."""
    by_text: dict[str, list[Pushed]] = defaultdict(list)
    for task in tasks:
        by_text[task.text].append(task)
    pairs: dict[tuple[str, int], Pushed] = {}
    rest: list[Paragraph] = []
    for paragraph in paragraphs:
        same = by_text.get(paragraph.text)
        if same:
            task = min(same, key=lambda t: (t.doc_id != paragraph.doc_id, t.index != paragraph.index, t.retired,
                                            t.task_id))  # fmt: skip
            same.remove(task)
            pairs[_place(paragraph)] = task
        else:
            rest.append(paragraph)
    left = [task for group in by_text.values() for task in group]
    return pairs, rest, sorted(left, key=lambda t: t.task_id)


def _similar(
    paragraphs: Sequence[Paragraph], tasks: Sequence[Pushed], edit_similarity: float
) -> dict[tuple[str, int], Pushed]:
    """Paragraphs paired with live tasks whose text is at least `edit_similarity` alike, the most alike first."""
    candidates = sorted(
        (
            (-ratio, paragraph.doc_id, paragraph.index, task.task_id, paragraph, task)
            for paragraph in paragraphs
            for task in tasks
            if not task.retired and (ratio := similarity(paragraph.text, task.text)) >= edit_similarity
        ),
        key=lambda c: c[:4],
    )
    pairs: dict[tuple[str, int], Pushed] = {}
    taken: set[int] = set()
    for *_, paragraph, task in candidates:
        if _place(paragraph) not in pairs and task.task_id not in taken:
            taken.add(task.task_id)
            pairs[_place(paragraph)] = task
    return pairs


def _renames_with_edits(plan: Plan, current: set[str], pushed_docs: set[str]) -> None:
    """An article whose file is gone and whose paragraphs now stand, mostly, in one new file was renamed (with
    edits, or split): said as a rename, its other paragraphs as moved across articles."""
    for old, destinations in sorted(plan.across.items()):
        if old in current or old in plan.renamed:
            continue
        new, _ = destinations.most_common(1)[0]
        if new not in pushed_docs and new not in plan.renamed.values():
            plan.renamed[old] = new
            del destinations[new]
    plan.across = defaultdict(Counter, {old: dests for old, dests in plan.across.items() if dests})


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
