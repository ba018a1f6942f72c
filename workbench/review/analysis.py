"""Which annotations look like mistakes: rows, disputes and a model's predictions in, a DataFrame of items out.

Pure and tabular (pandas): the rows' spans are grouped by surface form, label and article.

- `label`: the same string labelled differently across the corpus ("Turkey" GPE 40 times, ORG once): the
  minority mentions, with the majority label as the suggestion; score = the majority's share.
- `missing`: a string annotated in some paragraphs but standing unannotated, as whole tokens and inside no span,
  in others; score = the annotated share of its mentions.
- `model`: a model that never saw the article (cross-validation by article, `kfold`) confidently reads a span
  otherwise: another label, other boundaries, or an entity where none is marked; score = the model's probability.
- `disagreement`: a task whose annotators read a stretch of text differently; score = the share of annotators
  outside the most common reading.

Every item says where it is (task id, row id, article, paragraph, characters) and has a stable `item_id`, so a
flagged item is known again in the next review.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import ahocorasick
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from workbench.records import Row, stable_hash

REASONS = ("label", "missing", "model", "disagreement")
ITEM_COLUMNS = ["reason", "score", "task_id", "row_id", "doc_id", "paragraph", "start", "end", "text", "label",
                "suggestion", "detail", "item_id"]  # fmt: skip
PARAGRAPH_COLUMNS = ["row_id", "task_id", "doc_id", "paragraph", "text"]
SPAN_COLUMNS = ["row_id", "start", "end", "label", "text"]
# Whole tokens: a run of word characters, or one other non-space character ("Turkey" in "Turkey's" is whole,
# "Ankara" in "Ankaras" is not).
TOKEN = re.compile(r"\w+|[^\w\s]")
_WORD = re.compile(r"\w")
_ROW_SCHEMA = pa.schema([
    ("id", pa.string()), ("task_id", pa.int64()), ("doc_id", pa.string()), ("paragraph", pa.int32()),
    ("text", pa.string()),
    ("spans", pa.list_(pa.struct([("start", pa.int32()), ("end", pa.int32()), ("label", pa.string()),
                                  ("text", pa.string())]))),
])  # fmt: skip


def rows_table(rows: Iterable[Row]) -> pa.Table:
    """Rows as the Arrow columns the review reads (the same columns a release's table has)."""
    records = [{"id": r.id, "task_id": r.task_id, "doc_id": r.doc_id, "paragraph": r.paragraph, "text": r.text,
                "spans": [s.as_dict() for s in r.spans]} for r in rows]  # fmt: skip
    return pa.Table.from_pylist(records, schema=_ROW_SCHEMA)


def frames(table: pa.Table) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A table of rows (id, task_id, doc_id, paragraph, text, spans) as a paragraph frame and a span frame (the
    span's article joined in)."""
    paragraphs = table.select(["id", "task_id", "doc_id", "paragraph", "text"]).to_pandas()
    paragraphs = paragraphs.rename(columns={"id": "row_id"})
    column = table.column("spans").combine_chunks() if table.num_rows else pa.array([], _ROW_SCHEMA.field("spans").type)
    parents = pc.list_parent_indices(column)
    flat = pc.list_flatten(column)
    spans = pd.DataFrame({
        "row_id": pc.take(table.column("id"), parents).to_numpy(zero_copy_only=False),
        **{name: flat.field(name).to_numpy(zero_copy_only=False) for name in ("start", "end", "label", "text")},
    }, columns=SPAN_COLUMNS)  # fmt: skip
    spans = spans.astype({"start": "int64", "end": "int64"})
    spans = spans.merge(paragraphs[["row_id", "task_id", "doc_id", "paragraph"]], on="row_id", how="left")
    return paragraphs, spans


def label_items(spans: pd.DataFrame, *, min_mentions: int, min_share: float) -> pd.DataFrame:
    """Mentions of a string labelled otherwise than the label most of its mentions carry."""
    forms = _forms(spans)
    found = spans.merge(forms, on="text")
    found = found[(found.mentions >= min_mentions) & (found.share >= min_share) & (found.label != found.major)]
    detail = ("'" + found.text + "' is " + found.label + " here but " + found.major + " in "
              + found.major_mentions.astype(str) + " of " + found.mentions.astype(str) + " mentions, in "
              + found.major_articles.astype(str) + " article(s)")  # fmt: skip
    return _items(found.assign(reason="label", score=found.share, suggestion=found.major, detail=detail),
                  keys=("label",))  # fmt: skip


def missing_items(
    paragraphs: pd.DataFrame, spans: pd.DataFrame, *, min_mentions: int, min_share: float, memo: Memo | None = None
) -> pd.DataFrame:
    """Whole-token occurrences, inside no span, of a string that most of its mentions annotate."""
    forms = _forms(spans)
    forms = forms[forms.mentions >= min_mentions]
    found = occurrences(paragraphs, forms.text, memo)
    found = found[~overlaps_a_span(found, spans)]  # an occurrence inside or across a span is not left unannotated
    unmarked = found.groupby("text").size().rename("unmarked")
    forms = forms.join(unmarked, on="text").fillna({"unmarked": 0})
    forms["marked_share"] = forms.mentions / (forms.mentions + forms.unmarked)
    found = found.merge(forms[forms.marked_share >= min_share], on="text")
    found = found.merge(paragraphs[["row_id", "task_id", "doc_id", "paragraph"]], on="row_id")
    detail = ("'" + found.text + "' is not marked here but is marked " + found.major + " in "
              + found.mentions.astype(str) + " of " + (found.mentions + found.unmarked).astype(int).astype(str)
              + " whole-word mentions")  # fmt: skip
    return _items(found.assign(reason="missing", score=found.marked_share, label="", suggestion=found.major,
                               detail=detail), keys=())  # fmt: skip


@dataclass
class Memo:
    """Whole-token occurrences found before, text by text, and the forms searched for (their key): a text searched
    for the same forms again has the same occurrences. `occurrences` reads it and leaves the new ones in it."""

    forms: str = ""
    table: pa.Table | None = None  # per text searched: text_hash (16 bytes), starts, ends, forms (lists)


def occurrences(paragraphs: pd.DataFrame, strings: Iterable[str], memo: Memo | None = None) -> pd.DataFrame:
    """Where each of `strings` stands as whole tokens in the paragraphs: row_id, start, end, text.

    One Aho-Corasick pass per paragraph finds every exact occurrence of every string (overlapping ones too); an
    occurrence is kept when it starts and ends on a token boundary. A string with space at either end is never
    whole tokens, as no token begins or ends with space. With a `memo`, a text it holds for the same strings is not
    searched again (a release after a few annotations changed searches only their texts)."""
    columns = ["row_id", "start", "end", "text"]
    wanted = sorted({s for s in strings if TOKEN.search(s) and s == s.strip()})
    if not wanted or paragraphs.empty:
        return pd.DataFrame(columns=columns).astype({"start": "int64", "end": "int64"})
    texts = paragraphs.text.tolist()
    key = hashlib.blake2b("\0".join(wanted).encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()
    digests = [hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest() for text in texts]
    remembered = _remembered(memo, key, digests)
    rows: list[int] = []
    starts: list[int] = []
    ends: list[int] = []
    forms: list[str] = []
    todo = [number for number, done in enumerate(_known(memo, key, digests)) if not done]
    automaton = ahocorasick.Automaton()
    for form in wanted:  # a form that begins (ends) with a word character must not continue a word there
        automaton.add_word(form, (form, _WORD.match(form) is not None, _WORD.match(form, len(form) - 1) is not None))
    automaton.make_automaton()
    for number in todo:
        text = texts[number]
        for last, (form, word_start, word_end) in automaton.iter(text):
            end = last + 1
            start = end - len(form)
            if (word_start and start and _WORD.match(text, start - 1)) or (word_end and _WORD.match(text, end)):
                continue
            rows.append(number)
            starts.append(start)
            ends.append(end)
            forms.append(form)
    found = pd.DataFrame({
        "row": np.concatenate([remembered[0], np.array(rows, dtype=np.int64)]),
        "start": np.concatenate([remembered[1], np.array(starts, dtype=np.int64)]),
        "end": np.concatenate([remembered[2], np.array(ends, dtype=np.int64)]),
        "text": np.concatenate([remembered[3], np.array(forms, dtype=object)]),
    }).sort_values(["row", "start", "text"], kind="stable")  # fmt: skip
    if memo is not None:
        _remember(memo, key, digests, found)
    return pd.DataFrame({"row_id": paragraphs.row_id.to_numpy()[found.row.to_numpy()], "start": found.start.to_numpy(),
                         "end": found.end.to_numpy(), "text": found.text.to_numpy()}, columns=columns)  # fmt: skip


def _known(memo: Memo | None, key: str, digests: list[bytes]) -> list[bool]:
    """Whether the memo holds each text's occurrences of these forms."""
    if memo is None or memo.table is None or memo.forms != key:
        return [False] * len(digests)
    held = pc.is_in(pa.array(digests, pa.binary(16)), value_set=memo.table["text_hash"])
    return held.to_pylist()


def _remembered(memo: Memo | None, key: str, digests: list[bytes]) -> tuple[np.ndarray, ...]:
    """The occurrences the memo holds of these texts: (paragraph number, start, end, form) columns."""
    if memo is None or memo.table is None or memo.forms != key:
        return (np.zeros(0, dtype=np.int64),) * 3 + (np.zeros(0, dtype=object),)
    where = pc.index_in(pa.array(digests, pa.binary(16)), value_set=memo.table["text_hash"])
    numbers = np.flatnonzero(pc.is_valid(where).to_numpy(zero_copy_only=False))
    taken = memo.table.take(pc.drop_null(where))
    parents = pc.list_parent_indices(taken["starts"].combine_chunks()).to_numpy()
    flat = [pc.list_flatten(taken[name]).to_numpy(zero_copy_only=False) for name in ("starts", "ends", "forms")]
    return (numbers[parents].astype(np.int64), flat[0].astype(np.int64), flat[1].astype(np.int64),
            flat[2].astype(object))  # fmt: skip


def _remember(memo: Memo, key: str, digests: list[bytes], found: pd.DataFrame) -> None:
    """Leave in the memo every text's occurrences (`found`, sorted by paragraph number) of the forms `key`."""
    offsets = np.concatenate(([0], np.cumsum(np.bincount(found.row.to_numpy(), minlength=len(digests)))))
    offsets = pa.array(offsets.astype(np.int32))
    memo.forms = key
    memo.table = pa.table({
        "text_hash": pa.array(digests, pa.binary(16)),
        "starts": pa.ListArray.from_arrays(offsets, pa.array(found.start.to_numpy(), pa.int32())),
        "ends": pa.ListArray.from_arrays(offsets, pa.array(found.end.to_numpy(), pa.int32())),
        "forms": pa.ListArray.from_arrays(offsets, pa.array(found.text.tolist(), pa.string())),
    })  # fmt: skip


def overlaps_a_span(places: pd.DataFrame, spans: pd.DataFrame) -> np.ndarray:
    """For each place (row_id, start, end), whether it overlaps any span of its row.

    The spans are sorted by row and start with the furthest end reached so far in their row; a place overlaps a
    span when the last span of its row starting before the place ends reaches past the place's start."""
    if places.empty or spans.empty:
        return np.zeros(len(places), dtype=bool)
    rows = pd.Index(spans.row_id.unique())
    span_row = rows.get_indexer(spans.row_id).astype(np.int64)
    order = np.lexsort((spans.start.to_numpy(), span_row))
    span_row, span_start = span_row[order], spans.start.to_numpy(dtype=np.int64)[order]
    reach = pd.Series(spans.end.to_numpy(dtype=np.int64)[order]).groupby(span_row).cummax().to_numpy()
    place_row = rows.get_indexer(places.row_id).astype(np.int64)  # -1: no span in that row
    last = np.searchsorted((span_row << 32) | span_start, (place_row << 32) | places.end.to_numpy(dtype=np.int64)) - 1
    found = (place_row >= 0) & (last >= 0)
    last = np.where(found, last, 0)
    return found & (span_row[last] == place_row) & (reach[last] > places.start.to_numpy(dtype=np.int64))


def disagreement_items(paragraphs: pd.DataFrame, disputes: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Stretches of text (overlapping spans, grouped) that a task's annotators read differently."""
    readers = pd.DataFrame([(d["task_id"], a["id"], a["annotator"]) for d in disputes for a in d["annotations"]],
                           columns=["task_id", "annotation", "annotator"])  # fmt: skip
    marked = pd.DataFrame([(d["task_id"], d["row_id"], a["id"], *span) for d in disputes for a in d["annotations"]
                           for span in a["spans"]],
                          columns=["task_id", "row_id", "annotation", "start", "end", "label", "text"])  # fmt: skip
    if marked.empty:
        return _items(pd.DataFrame(columns=ITEM_COLUMNS), keys=())
    marked = marked.sort_values(["task_id", "start", "end"], kind="stable")
    reach = marked.groupby("task_id").end.cummax().groupby(marked.task_id).shift()
    marked["region"] = (reach.isna() | (marked.start >= reach)).cumsum()
    marked["reading"] = "'" + marked.text + "' " + marked.label
    regions = marked.groupby(["task_id", "row_id", "region"]).agg(start=("start", "min"), end=("end", "max"))
    readings = marked.groupby(["task_id", "region", "annotation"]).reading.agg(lambda r: ", ".join(sorted(r)))
    every = regions.reset_index().merge(readers, on="task_id")  # annotators who marked nothing there read "none"
    every = every.join(readings, on=["task_id", "region", "annotation"]).fillna({"reading": ""})
    every["votes"] = every.groupby(["task_id", "region", "reading"]).annotation.transform("size")
    every["said"] = every.reading.where(every.reading != "", "nothing") + " (annotator " + every.annotator.astype(
        "Int64").astype(str) + ")"
    summary = every.groupby(["task_id", "row_id", "region", "start", "end"]).agg(
        readers=("annotation", "size"), top=("votes", "max"), said=("said", lambda s: "; ".join(s)))
    summary = summary[summary.top < summary.readers].reset_index()
    summary = summary.merge(paragraphs[["row_id", "doc_id", "paragraph", "text"]].rename(columns={"text": "whole"}),
                            on="row_id")  # fmt: skip
    summary["text"] = _slices(summary.whole, summary.start, summary.end)
    detail = "annotators read '" + summary.text + "' differently: " + summary.said
    return _items(summary.assign(reason="disagreement", score=1 - summary.top / summary.readers, label="",
                                 suggestion="", detail=detail), keys=())  # fmt: skip


def model_items(paragraphs: pd.DataFrame, spans: pd.DataFrame, predictions: pd.DataFrame, *,
                confidence: float) -> pd.DataFrame:  # fmt: skip
    """Where a model that never saw the article confidently reads the text otherwise than the annotators.

    `predictions`: row_id, start, end, label, prob (the probability of that entity in the model's beam)."""
    sure = predictions[predictions.prob >= confidence]
    pairs = spans.merge(sure, on="row_id", suffixes=("", "_m"))
    pairs = pairs[(pairs.start_m < pairs.end) & (pairs.start < pairs.end_m)]
    pairs = pairs.assign(same_place=(pairs.start_m == pairs.start) & (pairs.end_m == pairs.end))
    pairs = pairs[~(pairs.same_place & (pairs.label_m == pairs.label))]
    pairs = pairs.sort_values("prob", ascending=False, kind="stable").drop_duplicates(["row_id", "start", "end",
                                                                                       "label"])  # fmt: skip
    model_text = _slices(pairs.row_id.map(paragraphs.set_index("row_id").text), pairs.start_m, pairs.end_m)
    pairs["suggestion"] = pairs.label_m.where(pairs.same_place, "'" + model_text + "' " + pairs.label_m)
    how = np.where(pairs.same_place, "another label", "other boundaries")
    detail = ("a model that never saw this article reads '" + pairs.text + "' (" + pairs.label + ") with " + how
              + ": " + pairs.suggestion + " (p=" + pairs.prob.round(2).astype(str) + ")")  # fmt: skip
    disagree = pairs.assign(reason="model", score=pairs.prob, detail=detail)
    # entities the model is sure of where the annotators marked nothing at all
    unmarked = sure[~overlaps_a_span(sure, spans)]
    unmarked = unmarked.merge(paragraphs[["row_id", "task_id", "doc_id", "paragraph", "text"]], on="row_id")
    unmarked["text"] = _slices(unmarked.text, unmarked.start, unmarked.end)
    unmarked = unmarked.assign(
        reason="model", score=unmarked.prob, suggestion=unmarked.label, label="",
        detail="a model that never saw this article finds '" + unmarked.text + "' (" + unmarked.label
        + ") where nothing is marked (p=" + unmarked.prob.round(2).astype(str) + ")",
    )  # fmt: skip
    return _items(pd.concat([disagree, unmarked], ignore_index=True), keys=("label",))


def review_items(paragraphs: pd.DataFrame, spans: pd.DataFrame, disputes: Sequence[Mapping[str, Any]], *,
                 min_mentions: int, min_share: float, predictions: pd.DataFrame | None = None,
                 confidence: float = 0.8, memo: Memo | None = None) -> pd.DataFrame:  # fmt: skip
    """Every item of every reason that can be checked (`model` only with predictions), sorted; `memo` spares the
    texts searched before (`occurrences`)."""
    parts = [
        label_items(spans, min_mentions=min_mentions, min_share=min_share),
        missing_items(paragraphs, spans, min_mentions=min_mentions, min_share=min_share, memo=memo),
        disagreement_items(paragraphs, disputes),
    ]
    if predictions is not None:
        parts.append(model_items(paragraphs, spans, predictions, confidence=confidence))
    return sort_items(pd.concat(parts, ignore_index=True))


def sort_items(items: pd.DataFrame) -> pd.DataFrame:
    """Reason by reason, surest first, then by place."""
    order = items.reason.map({reason: n for n, reason in enumerate(REASONS)})
    items = items.assign(_order=order).sort_values(["_order", "score", "doc_id", "paragraph", "start", "item_id"],
                                                   ascending=[True, False, True, True, True, True], kind="stable")
    return items.drop(columns="_order").reset_index(drop=True)


def open_items(items: pd.DataFrame, reviewed: Iterable[str]) -> pd.DataFrame:
    """The items not reviewed yet: `reviewed` holds the ids of items whose task was submitted again after it was
    flagged for them (see `flags.reviewed_ids`)."""
    return items[~items.item_id.isin(set(reviewed))].reset_index(drop=True)


def counts_by_reason(items: pd.DataFrame, checked: Iterable[str]) -> dict[str, int | None]:
    """Items per reason; None for a reason that was not checked."""
    counted = items.reason.value_counts()
    done = set(checked)
    return {reason: int(counted.get(reason, 0)) if reason in done else None for reason in REASONS}


def _forms(spans: pd.DataFrame) -> pd.DataFrame:
    """Per surface form: its mentions, its majority label with that label's mentions, articles and share."""
    per_label = spans.groupby(["text", "label"]).agg(n=("row_id", "size"), articles=("doc_id", "nunique"))
    per_label = per_label.reset_index().sort_values(["text", "n", "label"], ascending=[True, False, True])
    major = per_label.drop_duplicates("text").set_index("text")
    forms = pd.DataFrame({"mentions": per_label.groupby("text").n.sum(), "major": major.label,
                          "major_mentions": major.n, "major_articles": major.articles})  # fmt: skip
    forms["share"] = forms.major_mentions / forms.mentions
    return forms.reset_index()


def _slices(texts: pd.Series, starts: pd.Series, ends: pd.Series) -> pd.Series:
    """texts[i][starts[i]:ends[i]] for every row, as strings (also when there is no row)."""
    pieces = [text[start:end] for text, start, end in zip(texts, starts, ends, strict=True)]
    return pd.Series(pieces, index=texts.index, dtype="str")


def _items(found: pd.DataFrame, *, keys: Sequence[str]) -> pd.DataFrame:
    """Items in the common columns, each with its stable id (reason, row, characters and the `keys` columns)."""
    if found.empty:
        return pd.DataFrame(columns=ITEM_COLUMNS).astype({"score": "float64", "task_id": "int64",
                                                          "paragraph": "int64", "start": "int64", "end": "int64"})
    found = found.assign(item_id=[
        stable_hash(reason, row_id, int(start), int(end), *extra)
        for reason, row_id, start, end, *extra in zip(found.reason, found.row_id, found.start, found.end,
                                                      *(found[k] for k in keys), strict=True)
    ])  # fmt: skip
    out = found[ITEM_COLUMNS].astype({"task_id": "int64", "paragraph": "int64", "start": "int64", "end": "int64"})
    return out.assign(score=out.score.astype("float64").round(4)).reset_index(drop=True)
