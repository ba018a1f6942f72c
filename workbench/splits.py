"""Which articles go to train and which to test: grouped by article, deterministic, and stable across releases.

Splitting by article (not by paragraph) keeps the paragraphs of one story out of both sides, so the test score is
not inflated by near-duplicate context. An article keeps the split it had in the parent release; only articles
never released before are placed, in the order of a stable hash, so adding data never reshuffles old test data.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping

TRAIN = "train"
TEST = "test"
SPLITS = (TRAIN, TEST)


def split_bucket(doc_id: str, seed: int) -> str:
    """The sha256 of seed and article id: the same order on every machine and run (Python's hash() is salted)."""
    return hashlib.sha256(f"{seed}\x00{doc_id}".encode()).hexdigest()


def assign_splits(
    doc_ids: Iterable[str],
    *,
    test_fraction: float,
    seed: int,
    previous: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Map every article id to "train" or "test".

    Articles in `previous` (the parent release's membership) keep their split. New articles, in hash order, go
    to test while the test share of all articles is below `test_fraction`, so a first release of 5 articles at
    0.2 gets exactly one test article. With two or more articles neither split is left empty by a new article:
    the first new one goes to test when test is empty, and the last one goes to train when train is empty.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be between 0 and 1 (exclusive), got {test_fraction}")
    ids = sorted(set(doc_ids))
    previous = previous or {}
    for doc_id, split in previous.items():
        if split not in SPLITS:
            raise ValueError(f"article {doc_id!r} has split {split!r} in the parent release, not train or test")

    assigned = {doc_id: previous[doc_id] for doc_id in ids if doc_id in previous}
    new = sorted((doc_id for doc_id in ids if doc_id not in previous), key=lambda d: (split_bucket(d, seed), d))
    total = len(ids)
    test_count = sum(1 for split in assigned.values() if split == TEST)
    train_count = len(assigned) - test_count
    for position, doc_id in enumerate(new):
        is_last = position == len(new) - 1
        wants_test = test_count / total < test_fraction
        if is_last and total >= 2 and train_count == 0:
            wants_test = False
        assigned[doc_id] = TEST if wants_test else TRAIN
        if wants_test:
            test_count += 1
        else:
            train_count += 1
    return dict(sorted(assigned.items()))
