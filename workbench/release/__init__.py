"""Releases: a snapshot's rows -> an immutable, versioned folder that ML engineers can trust; verify, diff, list.

A release is `<releases_dir>/<MAJOR.MINOR.PATCH>/` holding parquet per split with a dataset card (so
`datasets.load_dataset(folder)` works offline exactly as on the Hub), spaCy DocBins, CoNLL files and a
`manifest.json` with the checksum of every file, the counts, the split membership and the provenance.

The path runs one way (`cut`): the version is checked, rows stream from the snapshot through the build into
Arrow columns (`draft`), the build's verdict comes in, the rows are placed against the parent release, and the
folder is written (`writer`). Each refusal comes at its step, so the first thing wrong is the one named.

Modules: `versions` (semver), `schema` (ClassLabel names, Features), `rows` (check and pack), `converters`
(Doc and CoNLL), `draft` (refusals and placement), `writer` (the folder), `manifest`, `card`, `changelog`,
`inspect` (verify, diff, list), `layout` (file names).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from workbench import __version__
from workbench.build import Build, RowBuilder, processes_for
from workbench.errors import ReviewOpenError
from workbench.project import Project
from workbench.records import Row
from workbench.release.draft import ReleaseDraft
from workbench.release.inspect import diff_releases, list_releases, verify_release
from workbench.release.manifest import ReleaseContext, read_manifest
from workbench.release.schema import release_features
from workbench.release.versions import parse_version
from workbench.release.writer import write
from workbench.review.record import release_summary
from workbench.snapshots import Snapshot, check_intact, latest_snapshot

T = TypeVar("T")
Progress = Callable[[int], None]

__all__ = [
    "ReleaseContext",
    "ReleaseResult",
    "cut",
    "diff_releases",
    "list_releases",
    "parse_version",
    "read_manifest",
    "release_features",
    "verify_release",
    "write_release",
]


@dataclass(frozen=True)
class ReleaseResult:
    """A release cut: where it is, the snapshot it came from, and the build's figures."""

    path: Path
    snapshot: Snapshot
    build: Build


def cut(project: Project, version: str, *, progress: Progress | None = None) -> ReleaseResult:
    """Cut release `version` of the project from its latest snapshot into exports/<dataset>/<version>/.

    Rows stream from the snapshot through the build into the release's Arrow columns and are never all held as
    Python objects; the build's figures, known once every row has passed, go into the manifest."""
    config = project.config
    ctx = ReleaseContext.from_config(
        config,
        version=version,
        labelstudio_project_title=config.labelstudio.project_title,
        model_name=config.model.name,
        workbench_version=__version__,
        git_commit=project.git_commit(),
    )
    with project.lock("workbench release"):
        draft = ReleaseDraft(project.releases_dir, ctx)
        snapshot = latest_snapshot(project)
        check_intact(snapshot)
        builder = RowBuilder.for_config(config, project.root)
        tasks = _counted(snapshot.tasks_iter(), progress)
        with contextlib.closing(builder.rows(tasks, processes=processes_for(snapshot.tasks))) as rows:
            for row in rows:
                draft.add(row)
        build = builder.finish()  # a region that cannot be kept exactly is named before any release refusal
        prepared = draft.prepare(
            source=f"The snapshot {snapshot.path.name}", counted=f" ({build.tasks} tasks: {dict(build.excluded)})"
        )
        assert prepared.table is not None
        review = release_summary(project, snapshot, prepared.table, build)
        if review["open"] and config.review.block_release:
            raise _review_open(version, review)
        ctx = dataclasses.replace(
            ctx,
            snapshot_name=snapshot.path.name,
            snapshot_sha256=snapshot.sha256,
            snapshot_time=snapshot.pulled_at,
            labelstudio_version=snapshot.label_studio_version,
            labelstudio_project_id=snapshot.project_id,
            model_version=", ".join(build.model_versions),
            alignment_report=build.alignment.as_dict(),
            agreement=build.agreement,
            preannotation_quality=build.quality,
            excluded_no_annotation=build.excluded.get("no_annotation", 0),
            excluded_only_skipped=build.excluded.get("skipped", 0),
            excluded_retired=build.excluded.get("retired", 0),
            excluded_awaiting_check=build.excluded.get("awaiting_check", 0),
            merge_ties=tuple(tie["task_id"] for tie in build.ties),
            review=review,
        )
        path = write(project.releases_dir, prepared, ctx)
    return ReleaseResult(path=path, snapshot=snapshot, build=build)


def _review_open(version: str, review: dict) -> ReviewOpenError:
    reasons = ", ".join(f"{n} {reason}" for reason, n in review["by_reason"].items() if n)
    return ReviewOpenError(
        f"{review['open']} review item(s) are open in the latest snapshot ({reasons}), and [review] block_release "
        f"is true, so release {version} was not cut. List them with `workbench review`, send them to the annotators "
        "with `workbench review --push`, and once the flagged tasks are submitted again, `workbench pull` and "
        "release; or set block_release = false to release with them (the manifest counts them). Nothing was written."
    )


def write_release(releases_dir: Path, rows: Iterable[Row], ctx: ReleaseContext) -> Path:
    """Release `rows` as `ctx.version` into `releases_dir/<version>/`, without a snapshot or a build (rows made
    elsewhere); refused, with nothing on disk changed, for the reasons `ReleaseDraft.prepare` gives.

    Rows must be final, as the build makes them: labels already renamed by `ctx.label_mapping` (which the
    release records and uses only to keep the ids of renamed labels), spans sorted."""
    draft = ReleaseDraft(Path(releases_dir), ctx)
    for row in rows:
        draft.add(row)
    return write(Path(releases_dir), draft.prepare(), ctx)


def _counted(items: Iterable[T], progress: Progress | None) -> Iterator[T]:
    """`items`, reporting each one read to `progress`."""
    for item in items:
        yield item
        if progress:
            progress(1)
