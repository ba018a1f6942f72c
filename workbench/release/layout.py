"""Where things are inside a release folder `exports/<dataset>/<MAJOR.MINOR.PATCH>/`, and beside it."""

from __future__ import annotations

from dataclasses import dataclass

MANIFEST = "manifest.json"
# The manifest's own sha256, in `sha256sum` format (`sha256sum -c manifest.sha256` checks it), from format 2 on.
MANIFEST_CHECKSUM = "manifest.sha256"
CARD = "README.md"
# Entity spans per label and split, drawn (deterministic PNG bytes): shown in the card, checksummed in the manifest.
LABEL_FIGURE = "label-distribution.png"
CHANGELOG = "CHANGELOG.md"  # beside the version folders, one for the dataset
FORMAT = "workbench-release/2"
FORMATS = ("workbench-release/1", FORMAT)  # what can still be read


@dataclass(frozen=True)
class DataFormat:
    """One of the forms a release holds every split in: its file (per split) and who reads it."""

    name: str
    file: str  # the file name of a split, with `{split}` in it
    reader: str

    def path(self, split: str) -> str:
        return self.file.format(split=split)


# Every form a release holds its rows in, one file per split each; the writer makes all of them, reuse checks all of
# them against the parent's manifest, the card points ML engineers at them.
DATA_FORMATS = {
    fmt.name: fmt
    for fmt in (
        DataFormat("parquet", "data/{split}-00000-of-00001.parquet", "Hugging Face `datasets.load_dataset(folder)`"),
        DataFormat("spacy", "{split}.spacy", "spaCy `DocBin().from_disk(path)`, `spacy train`"),
        DataFormat("conll", "{split}.conll", "CoNLL-2003 columns (token, POS, chunk, IOB2 tag)"),
    )
}


def parquet_path(split: str) -> str:
    """Where a split's single parquet shard lives inside a release (the Hub's own naming)."""
    return DATA_FORMATS["parquet"].path(split)


def docbin_path(split: str) -> str:
    return DATA_FORMATS["spacy"].path(split)


def conll_path(split: str) -> str:
    return DATA_FORMATS["conll"].path(split)
