"""A peer side by side: Label Studio's own CoNLL exporter and the workbench fed the same export.

Users who want NER training data out of Label Studio reach for `label_studio_sdk.converter.Converter` with the
CONLL2003 format (see ../shared/notes/landscape.md). Here an annotator corrects spans on seed paragraphs through
the real server: predictions accepted as they are, a span inside a word ("Ankara" in "Ankaras’", "Volodymyr
Zelensky" in "Zelenskys"), a selection dragged over the spaces around a name, and an emoji paragraph whose
regions carry the browser's UTF-16 offsets. One `workbench pull` writes the raw export; that very file goes to
the peer (offline: its tokenizer is NLTK's regex `TreebankWordTokenizer`, which needs no downloaded data) and to
`workbench release`. Both outputs are read back into character spans the same way and counted against what
the annotator submitted.

How a span is matched, for both sides alike:
- what the annotator submitted is a (start, end, label) in Python code points of the paragraph: browser UTF-16
  offsets converted here independently of the workbench, and whitespace the selection dragged in at its edges
  left out (that is the name the annotator meant; a tokenizer never puts a space inside a token anyway);
- an output's tokens are found in the paragraph text in order (each one at the next place it occurs), and its
  IOB tags are read the conlleval way (B- starts a span, I- of the same label continues it, any other I- starts
  one), giving (start, end, label) spans;
- a submitted span survives when an output span has exactly its start, end and label; otherwise it is
  "shifted" when an output span of the same label overlaps it, else "lost".
The peer's output has no task ids: it writes one block per submitted annotation (one per task without any),
tasks in export order, so blocks are matched to tasks by replaying that order and checking each block's
tokens against the task's text.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets
import pytest
from label_studio_sdk.converter import Converter

from tests.integration.annotators import Annotator, browser_region, find, prediction_regions, region_text, utf16
from tests.support import REPO_ROOT, LabelStudioServer, run_cli
from workbench import server
from workbench.project import read_json

TITLE = "Peer comparison project"
DATASET = "news-ner"
# An article the seeds lack: a flag and an emoji before the names, so browser (UTF-16) offsets are not code points.
EMOJI_ARTICLE = "Leaders meet in Rome 🇹🇷\r\n\r\n🇹🇷 Erdoğan met Biden 🙂 in Rome on Monday.\r\n"
EMOJI = ("005_emoji", 1)

Key = tuple[str, int]
SpanKey = tuple[int, int, str]


@dataclass
class Outcome:
    """How many submitted spans one exporter kept exactly, and what became of the others."""

    name: str
    submitted: int = 0
    exact: int = 0
    shifted: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)

    @property
    def loss(self) -> int:
        return self.submitted - self.exact

    def line(self) -> str:
        return (
            f"{self.name}: {self.exact}/{self.submitted} submitted spans exact, {len(self.shifted)} shifted, "
            f"{len(self.lost)} lost"
            + "".join(f"\n    shifted {s}" for s in self.shifted)
            + "".join(f"\n    lost {s}" for s in self.lost)
        )


@dataclass
class Comparison:
    """The submitted spans per task and what each exporter made of them."""

    root: Path
    texts: dict[Key, str]
    submitted: dict[Key, set[SpanKey]]
    peer: dict[Key, set[SpanKey]]
    workbench_tags: dict[Key, set[SpanKey]]
    workbench_spans: dict[Key, set[SpanKey]]
    workbench_conll: dict[Key, set[SpanKey]]


# ---- reading outputs back into spans (the same code for both exporters) -------------------------------------


def decode(text: str, tokens: list[str], tags: list[str]) -> set[SpanKey]:
    """Character spans of IOB `tags` over `tokens`, each token found at its next occurrence in `text`."""
    assert len(tokens) == len(tags)
    spans: set[SpanKey] = set()
    current: SpanKey | None = None
    position = 0
    for token, tag in zip(tokens, tags, strict=True):
        start = text.find(token, position)
        assert start >= 0, f"token {token!r} is not in the text after character {position}: {text!r}"
        end = position = start + len(token)
        label = "" if tag == "O" else tag[2:]
        if tag.startswith("I-") and current is not None and current[2] == label:
            current = (current[0], end, label)
            continue
        if current is not None:
            spans.add(current)
            current = None
        if tag != "O":
            current = (start, end, label)
    if current is not None:
        spans.add(current)
    return spans


def read_conll(path: Path) -> list[list[tuple[str, str]]]:
    """Blocks of (token, tag) from a CoNLL file: first column token, last column tag; DOCSTART lines skipped."""
    blocks: list[list[tuple[str, str]]] = [[]]
    for line in path.read_text(encoding="utf-8").split("\n"):
        if line.startswith("-DOCSTART-"):
            continue
        if not line.strip():
            if blocks[-1]:
                blocks.append([])
            continue
        columns = line.split(" ")
        assert len(columns) == 4, f"not a 4-column CoNLL line in {path.name}: {line!r}"
        blocks[-1].append((columns[0], columns[-1]))
    return [block for block in blocks if block]


def score(
    name: str, texts: dict[Key, str], submitted: dict[Key, set[SpanKey]], found: dict[Key, set[SpanKey]]
) -> Outcome:
    outcome = Outcome(name)
    for key, spans in sorted(submitted.items()):
        text, got = texts[key], found.get(key, set())
        for start, end, label in sorted(spans):
            outcome.submitted += 1
            if (start, end, label) in got:
                outcome.exact += 1
                continue
            near = [g for g in sorted(got) if g[2] == label and g[0] < end and start < g[1]]
            what = f"{label} {text[start:end]!r} ({start}-{end}) in {key}"
            if near:
                outcome.shifted.append(what + " -> " + ", ".join(f"{text[s:e]!r} ({s}-{e})" for s, e, _ in near))
            else:
                outcome.lost.append(what)
    return outcome


# ---- the one pass through the loop ----------------------------------------------------------------------------


def _codepoint_spans(text: str, regions: list[dict[str, Any]]) -> set[SpanKey]:
    """What the annotator meant by browser regions: UTF-16 offsets -> code points, edge whitespace left out."""
    to_codepoint = {utf16(text, i): i for i in range(len(text) + 1)}
    spans = set()
    for region in regions:
        start, end = to_codepoint[region["value"]["start"]], to_codepoint[region["value"]["end"]]
        assert text[start:end] == region_text(region)
        while text[start].isspace():
            start += 1
        while text[end - 1].isspace():
            end -= 1
        spans.add((start, end, region["value"]["labels"][0]))
    return spans


@pytest.fixture(scope="module")
def compared(ls_server: LabelStudioServer, tmp_path_factory: pytest.TempPathFactory) -> Comparison:
    root = tmp_path_factory.mktemp("peer")
    shutil.copytree(REPO_ROOT / "seeds", root / "seeds")
    (root / "seeds" / "005_emoji.txt").write_bytes(EMOJI_ARTICLE.encode("utf-8"))
    (root / "configs").mkdir()
    (root / "configs" / "workbench.toml").write_text(f'[labelstudio]\nproject_title = "{TITLE}"\n')
    env = {server.ENV_URL: ls_server.url, server.ENV_API_KEY: ls_server.connection.api_key}

    def cli(*args: str) -> str:
        return run_cli(root, env, *args).output

    cli("run")
    project_id = int(read_json(root / ".workbench" / "project.json")["project_id"])
    admin = Annotator.connect(ls_server.url, ls_server.connection.api_key)
    tasks = admin.tasks(project_id)
    submitted: dict[Key, set[SpanKey]] = {}

    def submit(key: Key, regions: list[dict[str, Any]]) -> None:
        admin.submit(tasks[key], regions)
        submitted[key] = _codepoint_spans(tasks[key]["data"]["text"], regions)

    # Predictions accepted as they are: names next to punctuation, curly quotes and apostrophes.
    for key in [("000_bb9e4f9b37ecf79a", 3), ("001_7bfbf6bffcecbea4", 13), ("002_ba5d5ad38cf6adfd", 4),
                ("003_52927cc6cf4faa95", 0), ("004_95b4872a3cd0646c", 0)]:  # fmt: skip
        submit(key, prediction_regions(tasks[key]))

    # Spans ending inside a word: "Ankara" in "Ankaras’", "Volodymyr Zelensky" in "Zelenskys".
    key = ("002_ba5d5ad38cf6adfd", 0)
    text = tasks[key]["data"]["text"]
    regions = [r for r in prediction_regions(tasks[key]) if region_text(r) != "Volodymyr Zelenskys"]
    ankara, zelensky = find(text, "Ankaras’"), find(text, "Volodymyr Zelenskys")
    regions += [
        browser_region(text, ankara[0], ankara[1] - 2, "GPE", "ank"),
        browser_region(text, zelensky[0], zelensky[1] - 1, "PERSON", "zel"),
    ]
    submit(key, regions)

    # A selection dragged over the spaces around a name; a wrong prediction fixed; a missed name added.
    key = ("000_bb9e4f9b37ecf79a", 2)
    text = tasks[key]["data"]["text"]
    regions = [
        r for r in prediction_regions(tasks[key])
        if region_text(r) not in ("United States National Security", "Jake Sullivan")
    ]  # fmt: skip
    regions += [
        browser_region(text, *find(text, " Jake Sullivan "), "PERSON", "ws"),
        browser_region(text, *find(text, "United States"), "GPE", "us"),
        browser_region(text, *find(text, "Ibrahim Kalın"), "PERSON", "ik"),
    ]
    submit(key, regions)

    # An emoji paragraph: the browser's offsets count the flag and the emoji as two units each.
    text = tasks[EMOJI]["data"]["text"]
    assert utf16(text, len(text)) > len(text)
    submit(
        EMOJI,
        [
            browser_region(text, *find(text, "Erdoğan"), "PERSON", "e1"),
            browser_region(text, *find(text, " Biden "), "PERSON", "e2"),
            browser_region(text, *find(text, "Rome"), "GPE", "e3"),
            browser_region(text, *find(text, "Monday"), "DATE", "e4"),
        ],
    )

    cli("pull")
    cli("release", "0.1.0")
    (snapshot,) = [p for p in (root / ".workbench" / "snapshots").glob("*.json") if not p.name.endswith(".meta.json")]
    texts = {key: task["data"]["text"] for key, task in tasks.items()}

    # The peer, on the same file, with the project's own labeling config, offline.
    label_config = admin.client.projects.get(id=project_id).label_config
    peer_dir = root / "peer"
    converter = Converter(config=label_config, project_dir=str(root), download_resources=False)
    converter.convert(str(snapshot), str(peer_dir), "CONLL2003", is_dir=False)
    blocks = read_conll(peer_dir / "result.conll")
    export = json.loads(snapshot.read_text(encoding="utf-8"))
    peer: dict[Key, set[SpanKey]] = {}
    position = 0
    for task in export:  # the converter's order: one block per submitted annotation, one per unannotated task
        key = (task["data"]["doc_id"], int(task["data"]["paragraph"]))
        annotations = task.get("annotations") or []
        submitted_here = [a for a in annotations if not a.get("was_cancelled")]
        count = len(submitted_here) if annotations else 1
        for block in blocks[position : position + count]:
            tokens, tags = [t for t, _ in block], [g for _, g in block]
            spans = decode(texts[key], tokens, tags)
            if submitted_here:
                peer[key] = spans
        position += count
    assert position == len(blocks), f"{len(blocks)} peer blocks for {position} expected from the export"

    # The workbench: the release as an ML engineer loads it, and its own CoNLL files.
    release = root / "exports" / DATASET / "0.1.0"
    loaded = datasets.load_dataset(str(release), cache_dir=str(tmp_path_factory.mktemp("hf-cache-peer")))
    names = loaded["train"].features["ner_tags"].feature.names
    tags_spans: dict[Key, set[SpanKey]] = {}
    row_spans: dict[Key, set[SpanKey]] = {}
    conll_spans: dict[Key, set[SpanKey]] = {}
    for split, rows in loaded.items():
        conll_blocks = read_conll(release / f"{split}.conll")
        assert len(conll_blocks) == rows.num_rows
        for row, block in zip(rows, conll_blocks, strict=True):
            key = (row["doc_id"], row["paragraph"])
            tags_spans[key] = decode(row["text"], row["tokens"], [names[t] for t in row["ner_tags"]])
            row_spans[key] = {(s["start"], s["end"], s["label"]) for s in row["spans"]}
            assert all(row["text"][s["start"] : s["end"]] == s["text"] for s in row["spans"])
            conll_spans[key] = decode(row["text"], [t for t, _ in block], [g for _, g in block])

    return Comparison(
        root=root,
        texts=texts,
        submitted=submitted,
        peer=peer,
        workbench_tags=tags_spans,
        workbench_spans=row_spans,
        workbench_conll=conll_spans,
    )


# ---- the comparison ---------------------------------------------------------------------------------------


def test_workbench_keeps_every_span_the_peer_loses_or_shifts_some(compared: Comparison) -> None:
    peer = score("Label Studio converter (CONLL2003)", compared.texts, compared.submitted, compared.peer)
    workbench = score("workbench (tokens/ner_tags)", compared.texts, compared.submitted, compared.workbench_tags)
    summary = f"\n{peer.line()}\n{workbench.line()}"
    print(summary)
    assert set(compared.peer) == set(compared.submitted), summary
    assert workbench.submitted == peer.submitted > 0, summary
    assert workbench.loss == 0, summary
    assert peer.loss > 0, summary


def test_the_peer_loses_the_hard_cases(compared: Comparison) -> None:
    """The peer re-tokenizes and reads UTF-16 offsets as code points: these spans cannot survive it."""
    peer = score("peer", compared.texts, compared.submitted, compared.peer)
    missed = "\n".join(peer.shifted + peer.lost)
    for name in ("'Ankara'", "'Volodymyr Zelensky'", "'Erdoğan'", "'Rome'", "'Monday'"):
        assert name in missed, f"{name} expected among the peer's losses:\n{missed}"


def test_release_spans_and_conll_match_what_was_submitted(compared: Comparison) -> None:
    for found, what in ((compared.workbench_spans, "spans"), (compared.workbench_conll, "CoNLL files")):
        outcome = score(f"workbench ({what})", compared.texts, compared.submitted, found)
        assert outcome.loss == 0, outcome.line()
    annotated = set(compared.submitted)
    assert set(compared.workbench_tags) == annotated
    for key in annotated:  # nothing invented either
        assert compared.workbench_tags[key] == compared.submitted[key], key
