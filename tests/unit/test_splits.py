"""Article-level train/test assignment: grouped, deterministic, stable across releases, exact first share."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.splits import assign_splits, split_bucket


def _ids(n: int, prefix: str = "doc") -> list[str]:
    return [f"{prefix}-{i}" for i in range(n)]


def _tests(assignment: dict[str, str]) -> int:
    return sum(1 for split in assignment.values() if split == "test")


def _expected_first_share(n: int, fraction: float) -> int:
    """The smallest count whose share reaches the fraction, keeping one train article when there are two+."""
    if n == 0:
        return 0
    k = next(k for k in range(n + 1) if k / n >= fraction)
    return min(k, n - 1) if n >= 2 else k


@pytest.mark.parametrize(
    ("description", "n", "fraction", "expected_test"),
    [
        ("five articles at 0.2 give exactly one test article", 5, 0.2, 1),
        ("ten articles at 0.2 give two", 10, 0.2, 2),
        ("ten articles at 0.3 give three (no float overshoot)", 10, 0.3, 3),
        ("ten articles at 0.7 give seven", 10, 0.7, 7),
        ("seven articles at 0.2 round up to two", 7, 0.2, 2),
        ("two articles at 0.01 still get one test article", 2, 0.01, 1),
        ("two articles at 0.99 still keep one train article", 2, 0.99, 1),
        ("a single article goes to test", 1, 0.2, 1),
        ("no articles give an empty assignment", 0, 0.2, 0),
    ],
)
def test_first_release_share(description: str, n: int, fraction: float, expected_test: int) -> None:
    result = assign_splits(_ids(n), test_fraction=fraction, seed=13, previous=None)
    assert set(result) == set(_ids(n))
    assert _tests(result) == expected_test, description


def test_same_input_gives_same_assignment_in_any_order() -> None:
    ids = _ids(40)
    first = assign_splits(ids, test_fraction=0.25, seed=7, previous=None)
    again = assign_splits(list(reversed(ids)) + ids[:3], test_fraction=0.25, seed=7, previous=None)
    assert first == again


def test_seed_changes_which_articles_are_test() -> None:
    ids = _ids(40)
    a = assign_splits(ids, test_fraction=0.25, seed=1, previous=None)
    b = assign_splits(ids, test_fraction=0.25, seed=2, previous=None)
    assert _tests(a) == _tests(b) == 10
    assert a != b


def test_bucket_is_a_stable_sha256_not_python_hash() -> None:
    # Pinned once: the order of new articles must never change between runs, machines or Python versions (a changed
    # order would put new articles of every existing dataset in other splits than a user saw before).
    assert split_bucket("doc-1", 13) == "0649c5de3204acdfd1c00298bd0f424fc05b8a2ef032844f4478c6d80d5ea31b"
    assert split_bucket("doc-1", 14) == "4e0afd2c5d6940747c465be27cbfc7fa415ff45deb14ef390bc32aa05e7c6072"


def test_the_first_assignment_of_ten_articles_is_the_one_recorded() -> None:
    result = assign_splits([f"doc-{i}" for i in range(10)], test_fraction=0.2, seed=13, previous=None)
    assert sorted(doc for doc, split in result.items() if split == "test") == ["doc-1", "doc-5"]


def test_previous_articles_keep_their_split_even_against_the_fraction() -> None:
    previous = {"a": "test", "b": "test", "c": "train"}
    result = assign_splits(["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"], test_fraction=0.2, seed=13,
                           previous=previous)
    assert {k: result[k] for k in previous} == previous
    assert _tests(result) == 2  # already at 2/10: every new article goes to train


def test_new_articles_fill_test_up_to_the_fraction() -> None:
    previous = {"a": "train", "b": "train", "c": "train", "d": "train"}
    result = assign_splits(["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"], test_fraction=0.2, seed=13,
                           previous=previous)
    assert _tests(result) == 2


def test_articles_gone_from_the_input_are_not_returned() -> None:
    result = assign_splits(["a"], test_fraction=0.2, seed=13, previous={"a": "train", "z": "test"})
    assert result == {"a": "train"}


@pytest.mark.parametrize(
    ("description", "kwargs"),
    [
        ("fraction zero", {"test_fraction": 0.0, "seed": 1, "previous": None}),
        ("fraction one", {"test_fraction": 1.0, "seed": 1, "previous": None}),
        ("an unknown split name in the parent", {"test_fraction": 0.2, "seed": 1, "previous": {"a": "dev"}}),
    ],
)
def test_bad_arguments_are_refused(description: str, kwargs: dict) -> None:
    with pytest.raises(ValueError):
        assign_splits(["a", "b"], **kwargs)


doc_ids = st.lists(st.text(min_size=1, max_size=12), min_size=0, max_size=60, unique=True)
fractions = st.floats(min_value=0.01, max_value=0.99)


@settings(max_examples=200, deadline=None)
@given(ids=doc_ids, fraction=fractions, seed=st.integers(0, 2**31))
def test_property_first_release_share_is_exact_and_both_splits_used(ids: list[str], fraction: float,
                                                                     seed: int) -> None:
    result = assign_splits(ids, test_fraction=fraction, seed=seed, previous=None)
    assert set(result) == set(ids)
    assert set(result.values()) <= {"train", "test"}
    assert _tests(result) == _expected_first_share(len(ids), fraction)
    if len(ids) >= 2:
        assert set(result.values()) == {"train", "test"}


@settings(max_examples=200, deadline=None)
@given(old=doc_ids, added=doc_ids, fraction=fractions, seed=st.integers(0, 2**31))
def test_property_adding_articles_never_moves_old_ones(old: list[str], added: list[str], fraction: float,
                                                       seed: int) -> None:
    first = assign_splits(old, test_fraction=fraction, seed=seed, previous=None)
    second = assign_splits(old + added, test_fraction=fraction, seed=seed, previous=first)
    # Every article is in exactly one split, and an article already released keeps its split.
    assert set(second) == set(old) | set(added)
    assert {doc: second[doc] for doc in first} == first
    # The test share of the grown release tracks the fraction: never more than one article above it, unless the
    # parent alone already was.
    parent_tests = _tests(first)
    assert _tests(second) <= max(parent_tests, math.ceil(fraction * len(second)) + 1)
