"""Reading releases back: verify one against its manifest, diff two, list them all. Parquet is read in batches,
so a 100k-row release costs memory per batch, not per release."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from datasets import Features

from workbench.errors import ReleaseError
from workbench.project import file_sha256
from workbench.release.changelog import changelog_entries
from workbench.release.columns import BATCH_ROWS
from workbench.release.layout import CHANGELOG, FORMATS, MANIFEST, MANIFEST_CHECKSUM, parquet_path
from workbench.release.manifest import Counts, Manifest, RowKeys, diff_keys, read_manifest
from workbench.release.versions import existing_versions, release_folder
from workbench.splits import SPLITS


def release_batches(folder: Path, split: str, columns: Sequence[str] | None = None) -> Iterator[list[dict[str, Any]]]:
    """A release split's rows, `BATCH_ROWS` at a time, with only `columns` read (all by default)."""
    path = folder / parquet_path(split)
    try:
        wanted = list(columns) if columns is not None else None
        for batch in pq.ParquetFile(path).iter_batches(batch_size=BATCH_ROWS, columns=wanted):
            yield batch.to_pylist()
    except (OSError, pa.ArrowException) as exc:
        raise ReleaseError(
            f"The release {folder.name} cannot be read: {path} is missing or not parquet ({exc}). Run "
            f"`workbench release verify {folder.name}` to see which files changed."
        ) from None


def release_keys(folder: Path, manifest: Manifest) -> RowKeys:
    """The diff side of an existing release, read from its parquet files a batch at a time."""
    names = manifest.class_label_names
    keys = RowKeys()
    for split in SPLITS:
        for rows in release_batches(folder, split, ["id", "doc_id", "ner_tags", "spans"]):
            for row in rows:
                spans = [(s["start"], s["end"], s["label"], s["text"]) for s in row["spans"]]
                keys.add(row["id"], row["doc_id"], [names[i] for i in row["ner_tags"]], spans)
    return keys


def verify_release(releases_dir: Path, version: str, *, recount: bool = True) -> list[str]:
    """Check a release against its manifest; one line per problem (an empty list means intact). Without
    `recount`, only the checksums (every file's, and the manifest's own): what training needs, in a fraction of
    the time of reading every row again.

    Every listed file's size and sha256 are recomputed. The manifest cannot checksum itself, so what it says
    about the data (counts, split membership, label names) is recomputed from the parquet files, and its own
    sha256 is compared with the one the changelog recorded when the release was cut.
    """
    folder = release_folder(releases_dir, version)
    try:
        manifest = read_manifest(releases_dir, version)
    except ReleaseError as exc:
        return [str(exc)]
    problems = []
    listed: Mapping[str, Mapping[str, Any]] = manifest.files
    for relpath, expected in sorted(listed.items()):
        path = folder / relpath
        if not path.is_file():
            problems.append(f"missing: {relpath}")
        elif path.stat().st_size != expected["size"] or file_sha256(path) != expected["sha256"]:
            problems.append(f"changed: {relpath} (sha256 differs from the manifest)")
    for path in sorted(folder.rglob("*")):
        relpath = path.relative_to(folder).as_posix()
        if path.is_file() and relpath not in (MANIFEST, MANIFEST_CHECKSUM) and relpath not in listed:
            problems.append(f"extra: {relpath} (not in the manifest)")
    problems += _manifest_checksum(folder, manifest)
    if not problems and recount:
        problems += [f"changed: {MANIFEST} ({why})" for why in _manifest_disagreements(releases_dir, folder, manifest)]
    return problems


def _manifest_checksum(folder: Path, manifest: Manifest) -> list[str]:
    """The manifest against its own checksum file (releases of format 2 on have one)."""
    path = folder / MANIFEST_CHECKSUM
    if manifest.format == FORMATS[0] and not path.exists():
        return []
    try:
        recorded = path.read_text(encoding="utf-8").split()[0]
    except (OSError, IndexError, UnicodeDecodeError):
        return [f"missing: {MANIFEST_CHECKSUM} (the manifest's own checksum)"]
    if recorded != file_sha256(folder / MANIFEST):
        return [f"changed: {MANIFEST} (its sha256 is not the one in {MANIFEST_CHECKSUM})"]
    return []


def _manifest_disagreements(releases_dir: Path, folder: Path, manifest: Manifest) -> list[str]:
    """Where the manifest no longer says what the (checksum-verified) data files and the changelog say."""
    found = []
    membership = manifest.split.membership
    counts = Counts(manifest.labels)
    for split in SPLITS:
        schema = pq.read_schema(folder / parquet_path(split))
        features = Features.from_arrow_schema(schema)
        if list(features["ner_tags"].feature.names) != manifest.class_label_names:
            found.append(f"its class_label_names differ from the {split} parquet's ClassLabel names")
        for rows in release_batches(folder, split, ["doc_id", "spans", "annotators"]):
            for row in rows:
                if membership.get(row["doc_id"]) != split:
                    found.append(f"its split membership does not put article {row['doc_id']} in {split}")
                counts.add(split, row["doc_id"], row["annotators"], (span["label"] for span in row["spans"]))
    if not found and counts.result() != manifest.counts:
        found.append("its counts differ from the counts of the data files")
    changelog = releases_dir / CHANGELOG
    if changelog.is_file():
        entry = changelog_entries(changelog.read_text(encoding="utf-8")).get(manifest.version, "")
        digest = file_sha256(folder / MANIFEST)
        if entry and digest not in entry:
            found.append(f"its sha256 {digest[:12]}... is not the one {CHANGELOG} recorded for this release")
    return sorted(set(found))


def diff_releases(releases_dir: Path, a: str, b: str) -> dict[str, Any]:
    """What changed from release `a` to release `b`: row ids added/removed/changed and span counts per label; both
    releases are verified against their manifests first."""
    releases_dir = Path(releases_dir)
    for version in (a, b):
        problems = verify_release(releases_dir, version)
        if problems:
            raise ReleaseError(
                f"Release {version} does not match its manifest ({'; '.join(problems)}), so a diff against it would "
                f"describe files nobody released. Restore the release folder (`workbench release verify {version}` "
                "lists what differs) and diff again."
            )
    keys_a = release_keys(releases_dir / a, read_manifest(releases_dir, a))
    keys_b = release_keys(releases_dir / b, read_manifest(releases_dir, b))
    return {"a": a, "b": b, **diff_keys(keys_a, keys_b)}


def readable_manifests(releases_dir: Path) -> list[dict[str, Any]]:
    """The manifest of every release that can be read, oldest first (`releases` names the others)."""
    found = []
    for version in existing_versions(Path(releases_dir)):
        try:
            found.append(read_manifest(releases_dir, str(version)).record)
        except ReleaseError:
            continue
    return found


def list_releases(releases_dir: Path) -> list[dict[str, Any]]:
    """Every release, oldest first: version, created_at, rows per split and total size in bytes; a release whose
    manifest cannot be read is listed with the `problem`."""
    releases_dir = Path(releases_dir)
    out = []
    for version in existing_versions(releases_dir):
        folder = releases_dir / str(version)
        try:
            manifest = read_manifest(releases_dir, str(version))
        except ReleaseError as exc:
            out.append({"version": str(version), "created_at": None, "rows": {}, "size_bytes": None,
                        "problem": str(exc)})  # fmt: skip
            continue
        own = [folder / name for name in (MANIFEST, MANIFEST_CHECKSUM) if (folder / name).exists()]
        size = sum(info["size"] for info in manifest.files.values()) + sum(p.stat().st_size for p in own)
        out.append(
            {
                "version": str(version),
                "created_at": manifest.created_at,
                "rows": {split: manifest.counts[split].get("rows") for split in SPLITS},
                "size_bytes": size,
            }
        )
    return out
