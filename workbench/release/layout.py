"""Where things are inside a release folder `exports/<dataset>/<MAJOR.MINOR.PATCH>/`, and beside it."""

from __future__ import annotations

MANIFEST = "manifest.json"
CARD = "README.md"
CHANGELOG = "CHANGELOG.md"  # beside the version folders, one for the dataset
FORMAT = "workbench-release/1"


def parquet_path(split: str) -> str:
    """Where a split's single parquet shard lives inside a release (the Hub's own naming)."""
    return f"data/{split}-00000-of-00001.parquet"


def docbin_path(split: str) -> str:
    return f"{split}.spacy"


def conll_path(split: str) -> str:
    return f"{split}.conll"
