"""Release versions: plain semantic versions that only go up, one folder each."""

from __future__ import annotations

import re
from pathlib import Path

from packaging.version import InvalidVersion, Version

from workbench.errors import ReleaseError

SEMVER = re.compile(r"(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)")


def parse_version(text: str) -> Version:
    """A semantic version MAJOR.MINOR.PATCH; anything else (v1.0, 1.0, 1.0.0rc1, 01.0.0) is refused.

    Only the plain form is allowed so that the folder name, the manifest and the ordering always agree."""
    try:
        version = Version(text)
    except (InvalidVersion, TypeError):
        version = None
    if version is None or not SEMVER.fullmatch(str(text)) or str(version) != text:
        raise ReleaseError(
            f"The release version {text!r} is not a semantic version. Use MAJOR.MINOR.PATCH with plain numbers "
            "and no prefix or suffix, for example 1.0.0 or 1.2.3."
        )
    return version


def existing_versions(releases_dir: Path) -> list[Version]:
    """The version folders in `releases_dir`, oldest first (hidden temporary folders and other names ignored)."""
    if not releases_dir.is_dir():
        return []
    return sorted(Version(child.name) for child in releases_dir.iterdir()
                  if child.is_dir() and SEMVER.fullmatch(child.name))  # fmt: skip


def check_new_version(releases_dir: Path, version: str) -> Version | None:
    """Refuse a version that exists or is not above the latest; return the parent (latest) version, if any."""
    wanted = parse_version(version)
    existing = existing_versions(releases_dir)
    if wanted in existing:
        raise ReleaseError(
            f"Release {version} already exists in {releases_dir}, and releases are never overwritten. Choose the "
            f"next version (for example {next_patch(existing)}) and release again."
        )
    if existing and wanted < existing[-1]:
        raise ReleaseError(
            f"Release {version} is lower than the latest release {existing[-1]} in {releases_dir}; versions only "
            f"go up. Choose a version above {existing[-1]} (for example {next_patch(existing)}) and release again."
        )
    return existing[-1] if existing else None


def next_patch(existing: list[Version]) -> str:
    """The version after the latest release: its patch number plus one (0.1.0 when there is none)."""
    if not existing:
        return "0.1.0"
    latest = existing[-1]
    return f"{latest.major}.{latest.minor}.{latest.micro + 1}"


def release_folder(releases_dir: Path, version: str) -> Path:
    """The folder of an existing release; a bad or unknown version is a ReleaseError listing the ones there are."""
    parse_version(version)
    folder = Path(releases_dir) / version
    if not folder.is_dir():
        have = ", ".join(str(v) for v in existing_versions(Path(releases_dir))) or "none"
        raise ReleaseError(
            f"There is no release {version} in {releases_dir} (releases there: {have}). Check the version, or "
            "cut it with `workbench release`."
        )
    return folder
