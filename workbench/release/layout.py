"""Where things are inside a release folder `exports/<dataset>/<MAJOR.MINOR.PATCH>/`, and beside it."""

from __future__ import annotations

MANIFEST = "manifest.json"
# The manifest's own sha256, in `sha256sum` format (`sha256sum -c manifest.sha256` checks it), from format 2 on.
MANIFEST_CHECKSUM = "manifest.sha256"
CARD = "README.md"
# Entity spans per label and split, drawn (deterministic PNG bytes): shown in the card, checksummed in the manifest.
LABEL_FIGURE = "label-distribution.png"
CHANGELOG = "CHANGELOG.md"  # beside the version folders, one for the dataset
FORMAT = "workbench-release/2"
FORMATS = ("workbench-release/1", FORMAT)  # what can still be read


def parquet_path(split: str) -> str:
    """Where a split's single parquet shard lives inside a release (the Hub's own naming)."""
    return f"data/{split}-00000-of-00001.parquet"


def docbin_path(split: str) -> str:
    return f"{split}.spacy"


def conll_path(split: str) -> str:
    return f"{split}.conll"
