"""The dataset card (`README.md` of a release): YAML front matter for `datasets`/the Hub, then prose for a reader.

Pure: the writer gathers the facts (the manifest draft, the split sizes, the data files' checksums) and this
module makes the front matter from them and turns everything into text.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import yaml
from datasets import Features

from workbench.records import row_columns
from workbench.release.layout import parquet_path
from workbench.rows.tasks import NO_MODEL
from workbench.splits import SPLITS


def front_matter(
    manifest: Mapping[str, Any],
    features: Features,
    splits: Mapping[str, Mapping[str, int]],
    sizes: Mapping[str, int],
) -> dict[str, Any]:
    """The card's YAML: what `datasets` reads to load the folder (configs, features, split sizes) and Hub tags.

    `splits` gives each split's `num_examples` and `num_bytes`; `sizes` each data file's size on disk."""
    split_info = [{"name": s, **splits[s]} for s in SPLITS]
    return {
        "pretty_name": f"{manifest['dataset']} {manifest['version']}",
        "task_categories": ["token-classification"],
        "task_ids": ["named-entity-recognition"],
        "size_categories": [size_category(sum(s["num_examples"] for s in split_info))],
        "tags": ["ner", "label-studio", "spacy"],
        "configs": [
            {
                "config_name": "default",
                "data_files": [{"split": s, "path": parquet_path(s)} for s in SPLITS],
            }
        ],
        "dataset_info": {
            # Features' own YAML form (what push_to_hub writes), so names and types round-trip exactly.
            "features": features._to_yaml_list(),
            "splits": split_info,
            "download_size": sum(sizes.values()),
            "dataset_size": sum(s["num_bytes"] for s in split_info),
        },
    }


def render_card(
    front_matter: Mapping[str, Any],
    manifest: Mapping[str, Any],
    data_files: Mapping[str, Mapping[str, Any]],
    *,
    figure: str | None = None,
) -> str:
    """The whole card: front matter between `---` lines, then the reader's sections.

    `manifest` is the release manifest without its `files` entry (the card is one of those files);
    `data_files` maps each parquet path to its `size` and `sha256`, which the card quotes as a checksum pointer;
    `figure` is the release's label-distribution image (a path inside the folder), shown under the label table.
    """
    header = yaml.safe_dump(dict(front_matter), sort_keys=False, allow_unicode=True, width=1000)
    sections = [
        _title(manifest),
        _fields(),
        _labels(manifest, figure),
        _splits(manifest),
        _annotation(manifest),
        _review(manifest),
        _quality(manifest),
        _alignment(manifest),
        _changes(manifest),
        _loading(manifest),
        _provenance(manifest),
        _integrity(manifest, data_files),
    ]
    return f"---\n{header}---\n\n" + "\n\n".join(section.strip() for section in sections) + "\n"


def parse_front_matter(card: str) -> dict[str, Any]:
    """The YAML between the card's first two `---` lines (what `datasets` reads), as a dict."""
    lines = card.splitlines()
    if not lines or lines[0].strip() != "---":
        raise ValueError("the card does not start with a '---' YAML front matter line")
    end = next((i for i, line in enumerate(lines[1:], start=1) if line.strip() == "---"), None)
    if end is None:
        raise ValueError("the card's YAML front matter has no closing '---' line")
    value = yaml.safe_load("\n".join(lines[1:end])) or {}
    if not isinstance(value, dict):
        raise ValueError("the card's YAML front matter is not a mapping")
    return value


def size_category(rows: int) -> str:
    """The Hub's `size_categories` bucket for a row count."""
    bounds = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")]
    for bound, name in bounds:
        if rows < bound:
            return name
    return "1M<n<10M" if rows < 10_000_000 else "n>10M"


# ---- sections ---------------------------------------------------------------------------------------------


def _title(m: Mapping[str, Any]) -> str:
    counts = m["counts"]
    total = counts["total"]
    model = m["model"]
    return f"""
# {m["dataset"]} {m["version"]}

A named-entity recognition dataset of **{total["rows"]} paragraphs** from **{total["articles"]} articles**,
with **{total["spans"]} labelled entity spans**. Every paragraph was pre-annotated by the spaCy pipeline
`{model.get("name") or "?"}` (version `{model.get("version") or "?"}`) and then corrected and submitted by a
human in Label Studio; only human-submitted labels are in the data. Each row is one paragraph, tokenized so
that every human span starts and ends on a token boundary: `tokens`/`ner_tags` and the character `spans`
agree (where two human spans overlap, the tags carry one of them and `spans` keeps both).
"""


def _fields() -> str:
    rows = [[f"`{name}`", type_, doc] for name, type_, doc in row_columns()]
    return "## Fields\n\n" + _table(["column", "type", "meaning"], rows)


def _labels(m: Mapping[str, Any], figure: str | None = None) -> str:
    labels: list[str] = list(m["labels"])
    counts = m["counts"]
    retired = [label for label in m.get("retired_labels", []) if label not in labels]
    body = [[label, *(_n(counts[s]["labels"].get(label, 0)) for s in SPLITS),
             _n(counts["total"]["labels"].get(label, 0))] for label in labels]
    text = "## Label schema\n\nEntity spans per label and split:\n\n"
    text += _table(["label", *SPLITS, "total"], body)
    if figure:
        text += f"\n\n![Entity spans per label and split in {m['dataset']} {m['version']}]({figure})"
    names = m["class_label_names"]
    text += (
        f"\n\n`ner_tags` is a `ClassLabel` with {len(names)} names: "
        + ", ".join(f"{i} `{name}`" for i, name in enumerate(names))
        + ". Ids never change between releases: new labels are appended, and a label that was removed keeps "
        "its ids (it simply no longer occurs)."
    )
    mapping = m.get("label_mapping") or {}
    if mapping:
        text += "\n\nLabels renamed or merged by the config's `label_mapping` (applied to tags and spans):\n\n"
        text += _table(["old label", "now"], [[old, new] for old, new in sorted(mapping.items())])
    if retired:
        text += "\n\nRetired labels (ids kept, no longer used): " + ", ".join(f"`{r}`" for r in retired) + "."
    return text


def _splits(m: Mapping[str, Any]) -> str:
    counts = m["counts"]
    split = m["split"]
    body = [[s, _n(counts[s]["articles"]), _n(counts[s]["rows"]), _n(counts[s]["spans"])] for s in SPLITS]
    parent = m.get("parent")
    keep = (
        f"Articles already in the parent release {parent} kept their split; only new articles were placed."
        if parent
        else "This is the first release, so every article was placed fresh."
    )
    return f"""
## Splits

Splits are made **per article**, never per paragraph, so no story has paragraphs on both sides. Articles are
ordered by the sha256 of the seed ({split["seed"]}) and the article id, and go to `test` while the test share of
articles is below {split["test_fraction"]}. {keep} The membership of every article is in `manifest.json`
(`split.membership`).

{_table(["split", "articles", "paragraphs", "spans"], body)}
"""


def _annotation(m: Mapping[str, Any]) -> str:
    counts = m["counts"]
    excluded = m.get("excluded_tasks", {})
    return f"""
## Annotation

{_plural(counts["total"]["annotators"], "annotator")} contributed (counted, not named: the `annotators` column holds
Label Studio user ids). Label Studio {m["labelstudio"].get("version") or "?"}, project
"{m["labelstudio"].get("project_title") or "?"}" (id {m["labelstudio"].get("project_id")}).

Tasks left out of this release: {_n(excluded.get("no_submitted_annotation", 0))} with no submitted annotation,
{_n(excluded.get("only_skipped", 0))} that annotators only skipped, {_n(excluded.get("retired", 0))} whose paragraph
is no longer in the seed articles (retired), and {_n(excluded.get("awaiting_check", 0))} whose text was edited
after annotation and that wait for an annotator to check the spans the edit touched.

{_time(m)}

{_ties(m)}
"""


def _time(m: Mapping[str, Any]) -> str:
    """The annotation time behind the release, in a sentence (from Label Studio's `lead_time` per annotation)."""
    time = m.get("annotation_time") or {}
    if not time.get("annotations"):
        return "Label Studio recorded no annotation time for these tasks."
    per_version = time.get("per_model_version") or {}
    versions = "; ".join(
        f"`{version}` {t['hours']:,.2f} hours over {_plural(t['annotations'], 'annotation')} (median "
        f"{t['median_seconds']} s, 90th percentile {t['p90_seconds']} s)" for version, t in per_version.items()
    )  # fmt: skip
    untimed = time.get("untimed") or 0
    return (
        f"Annotation time behind this release: **{time['hours']:,.2f} hours** ({time['seconds']:,.0f} seconds) in "
        f"Label Studio's editor over {_plural(time['annotations'], 'annotation')}, {_n(time.get('skipped', 0))} of "
        f"them skips; a median of {time['median_seconds']} s and a 90th percentile of {time['p90_seconds']} s per "
        f"task" + (f"; by the model version whose proposals the annotator saw (`none`: no proposal): {versions}"
                   if len(per_version) > 1 or NO_MODEL in per_version else "")
        + "." + (f" {_plural(untimed, 'annotation')} carried no time." if untimed else "")
    )  # fmt: skip


REVIEW_REASONS = {
    "label": "the same string labelled differently elsewhere in the corpus",
    "missing": "a string annotated in other paragraphs, left unannotated here",
    "model": "a model that never saw the article confidently reads the span otherwise",
    "disagreement": "the task's annotators read it differently",
}


def _review(m: Mapping[str, Any]) -> str:
    review = m.get("review") or {}
    if not review:
        return ("## Review\n\nThese rows were not checked for likely annotation mistakes (they were released without "
                "a snapshot).")
    by_reason = review.get("by_reason") or {}
    body = [[f"`{reason}`", meaning, "not checked" if by_reason.get(reason) is None else _n(by_reason[reason])]
            for reason, meaning in REVIEW_REASONS.items()]  # fmt: skip
    unchecked = (" The model reason was not checked: run `workbench review` on this snapshot once a model is "
                 "trained, then release." if not review.get("model_checked") else "")  # fmt: skip
    return (
        f"## Review\n\n`workbench review` looks for likely annotation mistakes. When this release was cut, "
        f"**{_plural(review.get('open', 0), 'item')} open** (found and not yet looked at again in Label Studio), "
        f"and {_plural(review.get('reviewed', 0), 'item')} had been reviewed (the task was submitted again after "
        f"it was flagged).{unchecked}\n\n" + _table(["reason", "what it means", "open items"], body)
    )


def _ties(m: Mapping[str, Any]) -> str:
    merge = m.get("merge") or {}
    tied = list(merge.get("tied_tasks") or [])
    policy = merge.get("policy") or "?"
    if not tied:
        return f"Several annotations of one task were merged under the policy `{policy}`; no merge was a tie."
    shown = ", ".join(str(task) for task in tied[:20]) + (f" and {len(tied) - 20} more" if len(tied) > 20 else "")
    return (
        f"Several annotations of one task were merged under the policy `{policy}`. {_plural(len(tied), 'task')} "
        f"had a tie (a span exactly half the annotators marked), so the latest annotation was used: tasks {shown}."
    )


def _quality(m: Mapping[str, Any]) -> str:
    return (
        "## Agreement between annotators\n\n"
        + _render_value(m.get("agreement") or {}, depth=3)
        + "\n\n## Pre-annotation quality\n\nHow well the model's suggestions matched the final human labels "
        "(per model version and label; a measure of how much pre-annotation helped):\n\n"
        + _render_value(m.get("preannotation_quality") or {}, depth=3)
    )


def _alignment(m: Mapping[str, Any]) -> str:
    return (
        "## Alignment report\n\nWhat the offset checks and the span-to-token alignment did while building this "
        "release (nothing is dropped silently):\n\n" + _render_value(m.get("alignment_report") or {}, depth=3)
    )


def _changes(m: Mapping[str, Any]) -> str:
    changes = m.get("changes") or {}
    parent = changes.get("parent")
    if not parent:
        return "## Changes\n\nFirst release."
    body = [[label, _n(c["a"]), _n(c["b"]), f"{c['delta']:+d}"] for label, c in changes["label_counts"].items()]
    renamed = changes.get("renamed") or {}
    renames = (
        "\n\nArticles renamed since (same rows and ids, same split): "
        + ", ".join(f"`{old}` -> `{new}`" for old, new in renamed.items()) + "."
        if renamed else ""
    )
    return (
        f"## Changes since {parent}\n\n{_n(changes['added'])} rows added, {_n(changes['removed'])} removed, "
        f"{_n(changes['changed'])} changed (same id, different spans or tags).{renames}\n\n"
        + _table(["label", parent, m["version"], "delta"], body)
    )


def _loading(m: Mapping[str, Any]) -> str:
    return f"""
## How to load

With 🤗 `datasets` (works offline on this folder, and the same on the Hub):

```python
from datasets import load_dataset

ds = load_dataset("path/to/{m["dataset"]}/{m["version"]}")
names = ds["train"].features["ner_tags"].feature.names
```

With pandas (the `ner_tags` ids; names are in this card and in `manifest.json`):

```python
import pandas as pd

train = pd.read_parquet("data/train-00000-of-00001.parquet")
```

With spaCy (`train.spacy`/`test.spacy` are `DocBin`s; entities from the tags in `doc.ents`, every human span in
`doc.spans["sc"]`):

```python
import spacy
from spacy.tokens import DocBin

docs = list(DocBin().from_disk("train.spacy").get_docs(spacy.blank("en").vocab))
```

`train.conll`/`test.conll` are CoNLL-2003 style: `-DOCSTART- -X- -X- O` before each article, one
`token _ _ tag` line per token (whitespace-only tokens left out, whitespace inside a token written as `_`), a
blank line after each paragraph.
"""


def _provenance(m: Mapping[str, Any]) -> str:
    source = m["source"]
    rows = [
        ["source snapshot", f"`{source.get('name')}` taken {source.get('time')}"],
        ["snapshot sha256", f"`{source.get('sha256')}`"],
        ["Label Studio", f"{m['labelstudio'].get('version')} (project id {m['labelstudio'].get('project_id')})"],
        ["pre-annotation model", f"`{m['model'].get('name')}` {m['model'].get('version')}"],
        ["config sha256", f"`{m['config_hash']}`"],
        ["workbench", f"{m['workbench']['version']} (git `{m['workbench']['git_commit']}`)"],
        ["parent release", m.get("parent") or "none"],
        ["created", m["created_at"]],
    ]
    return "## Provenance\n\n" + _table(["what", "value"], rows)


def _integrity(m: Mapping[str, Any], data_files: Mapping[str, Mapping[str, Any]]) -> str:
    body = [[f"`{path}`", _n(info["size"]), f"`{info['sha256']}`"] for path, info in sorted(data_files.items())]
    return (
        "## Integrity\n\n`manifest.json` in this folder lists the size and sha256 of every file of the release "
        "(this card included) together with the counts, the split membership and the provenance above; "
        f"`workbench release verify {m['version']}` recomputes them. The data files:\n\n"
        + _table(["file", "bytes", "sha256"], body)
    )


# ---- small renderers ---------------------------------------------------------------------------------------


def _n(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        text = f"{value:.3f}"
    elif isinstance(value, int) and not isinstance(value, bool):
        text = _n(value)
    elif value is None:
        text = "–"
    elif isinstance(value, str):
        text = value
    else:
        text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text.replace("|", "\\|").replace("\n", " ")


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(_cell(h) for h in headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def _plural(count: int, noun: str) -> str:
    return f"{_n(count)} {noun if count == 1 else noun + 's'}"


def _heading(key: Any) -> str:
    """A report field name reads as words ("per_label" -> "per label"); a data key (a model version such as
    `en_core_web_sm-3.8.0`, a label) is shown verbatim, so readers can match it against the manifest."""
    text = str(key)
    return text.replace("_", " ") if text.isidentifier() and text.islower() else text


def _render_value(value: Any, depth: int) -> str:
    """A report dict as tables: scalars as a key/value table, a dict of flat dicts as one wide table, deeper
    parts as sub-sections. Report shapes belong to other modules, so nothing here assumes their keys."""
    if isinstance(value, Mapping):
        if not value:
            return "_Not measured for this release._"
        scalars = {k: v for k, v in value.items() if _is_scalar(v)}
        nested = {k: v for k, v in value.items() if not _is_scalar(v)}
        parts = []
        if scalars:
            parts.append(_table(["measure", "value"], [[k, v] for k, v in scalars.items()]))
        flat_children = nested and all(
            isinstance(v, Mapping) and v and all(_is_scalar(x) for x in v.values()) for v in nested.values()
        )
        if flat_children:
            columns: list[str] = []
            for child in nested.values():
                columns += [str(c) for c in child if str(c) not in columns]
            rows = [[k, *(child.get(c) for c in columns)] for k, child in nested.items()]
            parts.append(_table(["", *columns], rows))
        else:
            for key, child in nested.items():
                heading = "#" * min(depth, 6)
                parts.append(f"{heading} {_heading(key)}\n\n{_render_value(child, depth + 1)}")
        return "\n\n".join(parts)
    if isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value) and depth <= 4:
        columns = []
        for item in value:
            columns += [str(c) for c in item if str(c) not in columns]
        if all(_is_scalar(x) for item in value for x in item.values()):
            return _table(columns, [[item.get(c) for c in columns] for item in value])
    if _is_scalar(value):
        return _cell(value)
    return "```json\n" + json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True) + "\n```"
