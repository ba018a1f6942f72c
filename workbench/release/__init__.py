"""Releases: a snapshot's rows -> an immutable, versioned folder that ML engineers can trust; verify, diff, list.

A release is `<releases_dir>/<MAJOR.MINOR.PATCH>/` holding parquet per split with a dataset card (so
`datasets.load_dataset(folder)` works offline exactly as on the Hub), spaCy DocBins, CoNLL files and a
`manifest.json` with the checksum of every file, the counts, the split membership and the provenance.

The path runs one way (`cut`): the version is checked, rows stream from the snapshot through the build into
Arrow columns (`draft`), the build's verdict comes in, the rows are placed against the parent release, and the
folder is written (`writer`). Each refusal comes at its step, so the first thing wrong is the one named. Tasks
that did not change since the parent release (same row hash: same task, config, code and tokenizer) are not built
again: their rows, figures and spaCy/CoNLL pieces come from the parent (`assemble`, `rowcache`), and the release
is byte for byte what a full rebuild writes.

Modules: `versions` (semver), `schema` (ClassLabel names, Features), `rows` (check and pack), `converters`
(Doc and CoNLL), `draft` (refusals and placement), `assemble` (rows and figures, reused or built), `rowcache`
(the row cache and the parent's pieces), `writer` (the folder), `manifest`, `card`, `changelog`, `inspect`
(verify, diff, list), `layout` (file names).
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from workbench import __version__
from workbench.errors import ReleaseError, ReviewOpenError
from workbench.parallel import Aside
from workbench.project import Project, remove_stale_temps, temp_path
from workbench.records import Row
from workbench.release.assemble import Assembly, assemble
from workbench.release.draft import Prepared, ReleaseDraft
from workbench.release.inspect import diff_releases, list_releases, readable_manifests, verify_release
from workbench.release.manifest import ReleaseContext, read_manifest
from workbench.release.pieces import PiecesWriter
from workbench.release.rowcache import ParentParts, RowCache, Unusable, build_context, pieces_path, write_cache
from workbench.release.schema import release_features
from workbench.release.versions import parse_version
from workbench.release.writer import Reuse, write
from workbench.rows.builder import Build
from workbench.rows.timing import release_time
from workbench.sync.snapshots import Snapshot, latest_snapshot
from workbench.wording import EXCLUDED, counted

Progress = Callable[[int], None]
# From this many rows, the review summary is counted in another process while the release's files are written.
ASIDE_MIN_ROWS = 4_000
# The open review items among the rows a release holds: (snapshot, the rows as Arrow, the build) -> the manifest's
# `review` record. Given by the caller (`workflow`), so releases depend on no review code.
ReviewSummary = Callable[[Snapshot, pa.Table, Build], dict[str, Any]]

__all__ = [
    "ReleaseContext",
    "ReleaseResult",
    "cut",
    "diff_releases",
    "list_releases",
    "parse_version",
    "read_manifest",
    "readable_manifests",
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
    reused: int = 0  # tasks whose row and figures came from the parent release
    rebuilt: int = 0  # tasks built
    note: str = ""  # why nothing could be reused from the parent, when there is one


def cut(
    project: Project,
    version: str,
    *,
    review: ReviewSummary,
    progress: Progress | None = None,
    reuse: bool = True,
) -> ReleaseResult:
    """Cut release `version` of the project from its latest snapshot into exports/<dataset>/<version>/.

    Rows stream from the snapshot through the build into the release's Arrow columns and are never all held as
    Python objects; the build's figures, known once every row has passed, go into the manifest, with the open
    review items that `review` counts among the rows released (the caller's: a release knows no review). With
    `reuse`, the tasks the parent release's row cache holds unchanged are not built again (the release is the
    same)."""
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
        snapshot = latest_snapshot(project)  # its sha256 is checked before any row is built (`assemble`)
        context = build_context(config, project.root)
        previous, note = _previous(project, draft, context) if reuse else (None, "a full rebuild was asked for")
        if previous is not None:
            draft.parent_keys = previous[0].parent_keys()
        assembly = assemble(snapshot, config, project.root, draft, context, previous, progress)
        parent = previous[1] if previous is not None else None
        previous = None  # the parent's row cache has given what it holds: let it go before the rows are written
        pa.default_memory_pool().release_unused()
        build = assembly.build  # a region that cannot be kept exactly is named before any release refusal
        excluded = f" ({build.tasks} tasks: {counted(build.excluded, EXCLUDED)})"
        prepared = draft.prepare(source=f"The snapshot {snapshot.path.name}", counted=excluded)
        assert prepared.table is not None
        aside, summary = None, {}
        if prepared.table.num_rows >= ASIDE_MIN_ROWS:  # counted in another process while the files are written
            aside = _aside(review, snapshot, prepared.table, build)
        else:
            summary = _checked(review(snapshot, prepared.table, build), version, config.review.block_release)
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
            annotation_time=release_time(build.annotation_time),
            excluded_no_annotation=build.excluded.get("no_annotation", 0),
            excluded_only_skipped=build.excluded.get("skipped", 0),
            excluded_retired=build.excluded.get("retired", 0),
            excluded_awaiting_check=build.excluded.get("awaiting_check", 0),
            merge_ties=tuple(tie["task_id"] for tie in build.ties),
        )

        def finish(ctx: ReleaseContext) -> ReleaseContext:
            """The open review items, once counted (a release they block is not written)."""
            if aside is None:
                return dataclasses.replace(ctx, review=summary)
            return dataclasses.replace(ctx, review=_checked(aside.result(), version, config.review.block_release))

        parts = None
        if parent is not None and assembly.reused_rows and draft.parent_keys is not None:
            parts = Reuse(parent=parent, ids=assembly.reused_rows, keys=draft.parent_keys)
        pieces = _pieces_writer(project, version)
        try:
            path = write(project.releases_dir, prepared, ctx, parts, finish, pieces)
        except BaseException:
            if pieces is not None:
                pieces.abandon()
            raise
        note = _keep_cache(project, version, context, assembly, prepared, pieces) or note
    return ReleaseResult(path=path, snapshot=snapshot, build=build, reused=assembly.reused_tasks,
                         rebuilt=assembly.built_tasks, note=note)  # fmt: skip


def _previous(project: Project, draft: ReleaseDraft, context: bytes) -> tuple[tuple[RowCache, ParentParts] | None, str]:
    """The parent release's row cache and pieces, when they can be trusted; else None and why. The cache alone
    (bound to the parent's manifest) still gives the parent's row keys when its data files are damaged."""
    if draft.parent is None:
        return None, ""
    parent = str(draft.parent)
    cache = None
    try:
        cache = RowCache.read(project, parent, context)
        parts = ParentParts.load(project.releases_dir / parent, read_manifest(project.releases_dir, parent),
                                 pieces_path(project, parent), cache.pieces_stamp)  # fmt: skip
    except Unusable as reason:
        if cache is not None:
            draft.parent_keys = cache.parent_keys()
        return None, f"every row was built: {reason}"
    except ReleaseError:
        return None, ""  # the parent cannot be read at all: `prepare` says so
    return (cache, parts), ""


def _pieces_writer(project: Project, version: str) -> PiecesWriter | None:
    """Where the release's pieces are written while it is (renamed into place with its row cache)."""
    final = pieces_path(project, version)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(final.parent)
        return PiecesWriter(temp_path(final), stamp=f"{version}-{time.time_ns()}-{os.getpid()}")
    except (OSError, pa.ArrowException):
        return None  # the next release builds every row


def _keep_cache(
    project: Project, version: str, context: bytes, assembly: Assembly, prepared: Prepared,
    pieces: PiecesWriter | None,
) -> str:  # fmt: skip
    """Record the new release's row cache and pieces, for the next release to reuse; a note if that failed."""
    keys = prepared.written_keys
    if keys is None or pieces is None:
        return ""
    records = assembly.records
    row_ids = records.column("row_id").to_pylist()
    columns = {
        "hash": records.column("hash"),
        "task_id": records.column("task_id"),
        "row_id": records.column("row_id"),
        "row_key": pa.array([keys.keys[row_id] if row_id is not None else None for row_id in row_ids],
                            pa.binary(16)),
        "doc_id": records.column("doc_id"),
        "key_ids": records.column("key_ids"),
        "values": records.column("values"),
        "lists": records.column("lists"),
    }  # fmt: skip
    try:
        os.replace(pieces.path, pieces_path(project, version))
        write_cache(project, version, context, assembly.keys, columns, keys.label_counts, pieces.stamp)
    except OSError as exc:
        pieces.path.unlink(missing_ok=True)
        return f"the row cache could not be written ({exc.strerror or exc}), so the next release builds every row"
    return ""


def _aside(review: ReviewSummary, snapshot: Snapshot, table: pa.Table, build: Build) -> Aside:
    """The review summary of `table`, counted in a forked process (this one keeps no reference to the table)."""
    return Aside(lambda: review(snapshot, table, build))


def _checked(summary: dict[str, Any], version: str, block: bool) -> dict[str, Any]:
    """The review summary, unless its open items block the release ([review] block_release)."""
    if summary["open"] and block:
        raise _review_open(version, summary)
    return summary


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


