"""Two releases cut from a real Label Studio around one relabelled span (issue 4, "Done when").

Annotators submit through the server, `workbench pull` + `release 0.1.0`; then one annotation's label is changed
with the SDK's `annotations.update`, and `pull` + `release 0.2.0`. Everything is checked the way an ML engineer
meets it: the CLI's exit codes and output, the folders on disk, `datasets.load_dataset`, spaCy's DocBin.
"""

from __future__ import annotations

import json
import re
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets
import pytest
import spacy
from spacy.tokens import DocBin
from typer.testing import CliRunner

from tests.integration.annotators import Annotator, browser_region, find, prediction_regions, region_text
from tests.support import REPO_ROOT, LabelStudioServer, tree_digest
from workbench import server
from workbench.cli import app
from workbench.labelstudio import accounts
from workbench.project import read_json
from workbench.release.card import parse_front_matter
from workbench.spans.alignment import tags_to_spans

TITLE = "Releases test project"
DATASET = "news-ner"
SECOND = "releases.second@example.org"
VERSIONS = ("0.1.0", "0.2.0")
A0, A1, A2, A3, A4 = (
    "000_bb9e4f9b37ecf79a", "001_7bfbf6bffcecbea4", "002_ba5d5ad38cf6adfd", "003_52927cc6cf4faa95",
    "004_95b4872a3cd0646c",
)  # fmt: skip
RELABELLED = (A1, 13)  # "Daesh" GPE (as predicted) in 0.1.0, ORG in 0.2.0
BOTH = (A0, 3)  # annotated identically by two annotators


@dataclass
class Releases:
    root: Path
    env: dict[str, str]
    tasks: dict[tuple[str, int], dict[str, Any]]
    loaded: dict[str, datasets.DatasetDict] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)

    def cli(self, *args: str, root: Path | None = None) -> Any:
        return CliRunner().invoke(app, ["-C", str(root or self.root), *args], env=self.env)

    @property
    def releases_dir(self) -> Path:
        return self.root / "exports" / DATASET

    def folder(self, version: str) -> Path:
        return self.releases_dir / version

    def manifest(self, version: str) -> dict[str, Any]:
        return json.loads((self.folder(version) / "manifest.json").read_text(encoding="utf-8"))

    def rows(self, version: str) -> dict[str, dict[str, Any]]:
        """Rows by id, with their split and tag names."""
        loaded = self.loaded[version]
        names = loaded["train"].features["ner_tags"].feature.names
        return {
            row["id"]: {**row, "split": split, "tags": [names[t] for t in row["ner_tags"]]}
            for split, part in loaded.items()
            for row in part
        }

    @property
    def changed_id(self) -> str:
        return str(self.tasks[RELABELLED]["data"]["key"])


def _ok(result: Any) -> str:
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def cut(ls_server: LabelStudioServer, tmp_path_factory: pytest.TempPathFactory) -> Releases:
    root = tmp_path_factory.mktemp("releases")
    shutil.copytree(REPO_ROOT / "seeds", root / "seeds")
    (root / "configs").mkdir()
    (root / "configs" / "workbench.toml").write_text(f'[labelstudio]\nproject_title = "{TITLE}"\n')
    env = {server.ENV_URL: ls_server.url, server.ENV_API_KEY: ls_server.connection.api_key}
    _ok(CliRunner().invoke(app, ["-C", str(root), "run"], env=env))
    project_id = int(read_json(root / ".workbench" / "project.json")["project_id"])
    admin = Annotator.connect(ls_server.url, ls_server.connection.api_key)
    cut = Releases(root=root, env=env, tasks=admin.tasks(project_id))
    tasks = cut.tasks

    # Paragraphs of every article: predictions accepted, or corrected.
    annotation_ids = {}
    for key in [(A0, 2), BOTH, (A1, 1), RELABELLED, (A2, 4), (A3, 0), (A4, 0)]:
        annotation_ids[key] = admin.submit(tasks[key], prediction_regions(tasks[key]))
    key = (A2, 0)
    text = tasks[key]["data"]["text"]
    regions = [r for r in prediction_regions(tasks[key]) if region_text(r) != "Volodymyr Zelenskys"]
    ankara, zelensky = find(text, "Ankaras’"), find(text, "Volodymyr Zelenskys")
    regions += [
        browser_region(text, ankara[0], ankara[1] - 2, "GPE", "an"),
        browser_region(text, zelensky[0], zelensky[1] - 1, "PERSON", "ze"),
    ]
    admin.submit(tasks[key], regions)
    login = accounts.create_annotator(ls_server.url, ls_server.connection.api_key, SECOND)
    second = Annotator.connect(ls_server.url, accounts.mint_token(ls_server.url, login.email, login.password))
    second.submit(tasks[BOTH], prediction_regions(tasks[BOTH]))

    _ok(cut.cli("pull"))
    cut.outputs["release 0.1.0"] = _ok(cut.cli("release", "0.1.0"))

    # One label changed in place, through the SDK.
    regions = prediction_regions(tasks[RELABELLED])
    (daesh,) = [r for r in regions if region_text(r) == "Daesh"]
    assert daesh["value"]["labels"] == ["GPE"]
    relabelled = [{**r, "value": {**r["value"], "labels": ["ORG"]}} if r is daesh else r for r in regions]
    admin.client.annotations.update(id=annotation_ids[RELABELLED], result=relabelled)

    _ok(cut.cli("pull"))
    cut.outputs["release 0.2.0"] = _ok(cut.cli("release", "0.2.0"))
    for version in VERSIONS:
        cache = tmp_path_factory.mktemp(f"hf-cache-{version}")
        cut.loaded[version] = datasets.load_dataset(str(cut.folder(version)), cache_dir=str(cache))
    return cut


# ---- integrity ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_verify_passes_on_both_releases(cut: Releases, version: str) -> None:
    output = _ok(cut.cli("release", "verify", version))
    assert version in output


@pytest.mark.parametrize("version", ["0.1.0", "0.2.0", "0.1.5"])
def test_an_existing_or_lower_version_is_refused_with_no_change_on_disk(cut: Releases, version: str) -> None:
    before = tree_digest(cut.releases_dir)
    result = cut.cli("release", version)
    assert result.exit_code != 0
    assert version in result.output and "Traceback" not in result.output
    assert tree_digest(cut.releases_dir) == before
    assert sorted(p.name for p in cut.releases_dir.iterdir()) == ["0.1.0", "0.2.0", "CHANGELOG.md"]


def _copy_of_the_releases(cut: Releases, tmp_path: Path) -> Path:
    """A project holding a copy of the releases, so tampering never touches the module's own."""
    copy = tmp_path / "copy"
    shutil.copytree(cut.root / "configs", copy / "configs")
    shutil.copytree(cut.releases_dir, copy / "exports" / DATASET)
    return copy


@pytest.mark.parametrize(
    ("how", "relpath"),
    [
        ("append", "data/train-00000-of-00001.parquet"),
        ("append", "test.spacy"),
        ("append", "README.md"),
        ("delete", "train.conll"),
        ("extra", "data/validation-00000-of-00001.parquet"),
    ],
)
def test_a_tampered_file_fails_verify_naming_the_file(cut: Releases, tmp_path: Path, how: str, relpath: str) -> None:
    copy = _copy_of_the_releases(cut, tmp_path)
    target = copy / "exports" / DATASET / "0.1.0" / relpath
    if how == "append":
        target.write_bytes(target.read_bytes() + b"\0")
    elif how == "delete":
        target.unlink()
    else:
        target.write_bytes(b"not part of the release")

    result = cut.cli("release", "verify", "0.1.0", root=copy)
    assert result.exit_code != 0, result.output
    assert relpath in result.output
    assert "Traceback" not in result.output
    _ok(cut.cli("release", "verify", "0.2.0", root=copy))  # the other release is untouched


def test_a_tampered_manifest_fails_verify_naming_it(cut: Releases, tmp_path: Path) -> None:
    copy = _copy_of_the_releases(cut, tmp_path)
    path = copy / "exports" / DATASET / "0.1.0" / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    manifest["counts"]["train"]["rows"] += 5
    manifest["split"]["membership"] = dict.fromkeys(manifest["split"]["membership"], "train")
    path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    result = cut.cli("release", "verify", "0.1.0", root=copy)
    assert result.exit_code != 0, result.output
    assert "manifest.json" in result.output


# ---- between versions -------------------------------------------------------------------------------------


def test_diff_names_exactly_the_relabelled_row(cut: Releases) -> None:
    changes = json.loads(_ok(cut.cli("diff", "0.1.0", "0.2.0", "--json")))
    assert changes["added"] == []
    assert changes["removed"] == []
    assert changes["changed"] == [cut.changed_id]
    assert changes["label_counts"]["GPE"]["delta"] == -1
    assert changes["label_counts"]["ORG"]["delta"] == 1
    assert all(c["delta"] == 0 for label, c in changes["label_counts"].items() if label not in ("GPE", "ORG"))


def test_the_relabelled_span_is_all_that_changed_in_the_rows(cut: Releases) -> None:
    old, new = cut.rows("0.1.0"), cut.rows("0.2.0")
    assert set(old) == set(new)
    for row_id in old:
        if row_id != cut.changed_id:
            assert old[row_id] == new[row_id], row_id
    daesh = lambda row: [s["label"] for s in row["spans"] if s["text"] == "Daesh"]  # noqa: E731
    assert daesh(old[cut.changed_id]) == ["GPE"]
    assert daesh(new[cut.changed_id]) == ["ORG"]
    position = old[cut.changed_id]["tokens"].index("Daesh")
    assert (old[cut.changed_id]["tags"][position], new[cut.changed_id]["tags"][position]) == ("B-GPE", "B-ORG")


def test_row_ids_and_split_membership_are_stable(cut: Releases) -> None:
    old, new = cut.rows("0.1.0"), cut.rows("0.2.0")
    assert {i: r["split"] for i, r in old.items()} == {i: r["split"] for i, r in new.items()}
    assert {r["split"] for r in new.values()} == {"train", "test"}
    for row_id, row in new.items():
        assert row_id == cut.tasks[(row["doc_id"], row["paragraph"])]["data"]["key"]
    assert cut.manifest("0.1.0")["split"]["membership"] == cut.manifest("0.2.0")["split"]["membership"]
    assert cut.manifest("0.2.0")["parent"] == "0.1.0"
    assert cut.manifest("0.1.0")["class_label_names"] == cut.manifest("0.2.0")["class_label_names"]


def test_changelog_has_an_entry_per_release(cut: Releases) -> None:
    changelog = (cut.releases_dir / "CHANGELOG.md").read_text(encoding="utf-8")
    headings = re.findall(r"^## (\S+)", changelog, re.MULTILINE)
    assert headings == ["0.2.0", "0.1.0"]
    entry = changelog[changelog.index("## 0.2.0") : changelog.index("## 0.1.0")]
    assert "Against 0.1.0: 0 rows added, 0 removed, 1 changed" in entry
    assert re.search(r"\| GPE \| \d+ \| \d+ \| -1 \|", entry) and re.search(r"\| ORG \| \d+ \| \d+ \| \+1 \|", entry)


def test_releases_lists_both(cut: Releases) -> None:
    output = _ok(cut.cli("releases"))
    assert "0.1.0" in output and "0.2.0" in output
    assert output.index("0.1.0") < output.index("0.2.0")


# ---- what an ML engineer loads ----------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_load_dataset_works_on_both(cut: Releases, version: str) -> None:
    loaded = cut.loaded[version]
    manifest = cut.manifest(version)
    assert set(loaded) == {"train", "test"}
    assert loaded["train"].features["ner_tags"].feature.names == manifest["class_label_names"]
    for split in ("train", "test"):
        assert loaded[split].num_rows == manifest["counts"][split]["rows"] > 0
    for row in cut.rows(version).values():
        decoded = tags_to_spans(row["text"], row["tokens"], row["tags"])
        assert {(s.start, s.end, s.label) for s in decoded} == {
            (s["start"], s["end"], s["label"]) for s in row["spans"]
        }


@pytest.mark.parametrize("version", VERSIONS)
def test_docbin_loads_in_spacy_with_the_rows_entities(cut: Releases, version: str) -> None:
    rows = cut.rows(version)
    vocab = spacy.blank("en").vocab
    seen = set()
    for split in ("train", "test"):
        for doc in DocBin().from_disk(cut.folder(version) / f"{split}.spacy").get_docs(vocab):
            row = rows[doc.user_data["id"]]
            seen.add(row["id"])
            assert row["split"] == split
            assert doc.text == row["text"]
            from_tags = [(s.start, s.end, s.label) for s in tags_to_spans(row["text"], row["tokens"], row["tags"])]
            assert [(e.start_char, e.end_char, e.label_) for e in doc.ents] == from_tags
            assert [(s.start_char, s.end_char, s.label_, s.text) for s in doc.spans["sc"]] == [
                (s["start"], s["end"], s["label"], s["text"]) for s in row["spans"]
            ]
    assert seen == set(rows)


# ---- the card ---------------------------------------------------------------------------------------------


def _section(card: str, heading: str) -> str:
    start = card.index(f"\n## {heading}")
    end = card.find("\n## ", start + 1)
    return card[start : end if end > 0 else len(card)]


def test_card_renders_the_figures(cut: Releases) -> None:
    version = "0.2.0"
    card = (cut.folder(version) / "README.md").read_text(encoding="utf-8")
    manifest = cut.manifest(version)
    rows = cut.rows(version)
    front = parse_front_matter(card)
    assert front["configs"][0]["data_files"] == [
        {"split": "train", "path": "data/train-00000-of-00001.parquet"},
        {"split": "test", "path": "data/test-00000-of-00001.parquet"},
    ]

    # Label schema: spans per label and split, counted here from the loaded rows.
    per_split = {s: Counter(sp["label"] for r in rows.values() if r["split"] == s for sp in r["spans"])
                 for s in ("train", "test")}  # fmt: skip
    labels = _section(card, "Label schema")
    for label in manifest["labels"]:
        train, test = per_split["train"][label], per_split["test"][label]
        assert f"| {label} | {train} | {test} | {train + test} |" in labels, label
    assert per_split["test"] and per_split["train"]

    # Splits: how they were made, and their sizes.
    splits = _section(card, "Splits")
    assert "per article" in splits and "0.1.0 kept their split" in splits
    for split in ("train", "test"):
        part = [r for r in rows.values() if r["split"] == split]
        articles, spans = len({r["doc_id"] for r in part}), sum(len(r["spans"]) for r in part)
        assert f"| {split} | {articles} | {len(part)} | {spans} |" in splits, split

    # Annotators counted (not named), agreement, quality, alignment.
    annotation = _section(card, "Annotation")
    assert "2 annotators contributed" in annotation
    assert SECOND not in card and "@" not in annotation
    agreement = _section(card, "Agreement between annotators")
    assert "| tasks_compared | 1 |" in agreement and "| f1 | 1.000 |" in agreement
    assert "| full_agreement | 1.000 |" in agreement
    quality = _section(card, "Pre-annotation quality")
    counts = next(iter(manifest["preannotation_quality"].values()))["counts"]
    assert counts["relabelled"] == 1 and counts["rebounded"] == 1 and counts["added"] == 1
    for bucket, n in counts.items():
        assert f"| {bucket} | {n} |" in quality, bucket
    alignment = _section(card, "Alignment report")
    report = manifest["alignment_report"]
    assert report["split_tokens"] >= 2
    for name in ("regions", "kept", "trimmed", "converted", "split_tokens"):
        assert f"| {name} | {report[name]} |" in alignment, name

    # Changes since the parent, and how to load.
    assert "## Changes since 0.1.0" in card and "1 changed" in card
    loading = _section(card, "How to load")
    assert f'load_dataset("path/to/{DATASET}/{version}")' in loading
    assert "pd.read_parquet" in loading and "DocBin().from_disk" in loading


def test_the_commands_the_card_names_work(cut: Releases) -> None:
    card = (cut.folder("0.2.0") / "README.md").read_text(encoding="utf-8")
    commands = re.findall(r"`workbench ([^`]+)`", card)
    assert commands
    for command in commands:
        _ok(cut.cli(*command.split()))
