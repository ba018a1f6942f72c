"""CHANGELOG.md beside the releases: one entry per release, newest first, each the diff against its parent."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from packaging.version import Version

from workbench.errors import ReleaseError
from workbench.project import atomic_write_bytes, file_sha256
from workbench.release.layout import CHANGELOG, MANIFEST
from workbench.release.manifest import read_manifest
from workbench.release.versions import SEMVER, existing_versions

_ENTRY = re.compile(r"^## (\S+)", re.MULTILINE)


def changelog_entries(text: str) -> dict[str, str]:
    """The existing entries of a CHANGELOG.md, by version, kept verbatim."""
    starts = list(_ENTRY.finditer(text))
    entries = {}
    for i, match in enumerate(starts):
        end = starts[i + 1].start() if i + 1 < len(starts) else len(text)
        entries[match[1]] = text[match.start() : end].strip()
    return entries


def changelog_entry(manifest: Mapping[str, Any], manifest_sha256: str) -> str:
    """One release's changelog entry: counts against the parent and the per-label deltas."""
    counts, changes = manifest["counts"], manifest["changes"]
    rows = (
        f"{counts['total']['rows']} rows (train {counts['train']['rows']}, test {counts['test']['rows']}) "
        f"from {counts['total']['articles']} articles"
    )
    lines = [f"## {manifest['version']} ({manifest['created_at']})", ""]
    if changes["parent"]:
        lines.append(
            f"Against {changes['parent']}: {changes['added']} rows added, {changes['removed']} removed, "
            f"{changes['changed']} changed. Now {rows}."
        )
        renamed = changes.get("renamed") or {}
        if renamed:
            lines += ["", "Renamed articles: " + ", ".join(f"{old} -> {new}" for old, new in renamed.items()) + "."]
        retired = manifest.get("excluded_tasks", {}).get("retired", 0)
        if retired:
            lines += ["", f"{retired} paragraph(s) retired from the seed articles are left out."]
        moved = [(label, c) for label, c in changes["label_counts"].items() if c["delta"]]
        if moved:
            lines += ["", f"| label | {changes['parent']} | {manifest['version']} | delta |", "|---|---|---|---|"]
            lines += [f"| {label} | {c['a']} | {c['b']} | {c['delta']:+d} |" for label, c in moved]
        else:
            lines += ["", "Span counts per label unchanged."]
    else:
        lines.append(f"First release: {rows}, {counts['total']['spans']} spans.")
    lines += ["", f"manifest.json sha256 `{manifest_sha256}`"]
    return "\n".join(lines)


def update_changelog(releases_dir: Path, dataset: str) -> None:
    """Rewrite CHANGELOG.md atomically, newest first: existing entries verbatim, an entry added for every
    release that lacks one (so an entry lost to a crash after the rename comes back at the next release)."""
    path = releases_dir / CHANGELOG
    entries = changelog_entries(path.read_text(encoding="utf-8")) if path.exists() else {}
    for version in existing_versions(releases_dir):
        if str(version) not in entries:
            with contextlib.suppress(ReleaseError):
                manifest = read_manifest(releases_dir, str(version))
                sha = file_sha256(releases_dir / str(version) / MANIFEST)
                entries[str(version)] = changelog_entry(manifest.record, sha)

    def order(version: str) -> tuple[int, Version | str]:
        return (1, Version(version)) if SEMVER.fullmatch(version) else (0, version)

    newest_first = sorted(entries, key=order, reverse=True)
    header = (
        f"# Changelog: {dataset}\n\nWritten by `workbench release`, newest first; each entry is the diff "
        "against the release before it.\n"
    )
    text = header + "".join(f"\n{entries[v]}\n" for v in newest_first)
    atomic_write_bytes(path, text.encode("utf-8"))
