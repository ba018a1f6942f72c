"""The project's trained models, as `workbench models` lists them."""

from __future__ import annotations

import json
from typing import Any

from workbench.model.deployed import deployed
from workbench.pipeline import model_version, resolve
from workbench.project import Project


def list_models(project: Project) -> list[dict[str, Any]]:
    """The project's trained models, by release version: model version, release, base, test F1 against the
    pipeline it would replace (as scored when trained) and whether it is deployed, size, date."""
    found = []
    record = deployed(project)
    folder = project.models_dir
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        meta_path = path / "meta.json"
        if not path.is_dir() or path.name.startswith(".") or not meta_path.is_file():
            continue
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            info = meta.get("workbench", {})
            found.append({
                "path": str(path),
                "model_version": model_version(meta),
                "release": info.get("release", "?"),
                "base": info.get("base", "?"),
                "f1": meta.get("performance", {}).get("ents_f"),
                "replaces": info.get("replaces_version", "?"),
                "replaces_f1": info.get("replaces_scores", {}).get("f1"),
                "better": info.get("better"),
                "deployed": record is not None and resolve(record.name, project.root) == str(path.resolve()),
                "size_bytes": sum(p.stat().st_size for p in path.rglob("*") if p.is_file()),
                "trained_at": info.get("trained_at", ""),
            })  # fmt: skip
        except (OSError, ValueError, AttributeError):
            found.append({"path": str(path), "problem": f"{meta_path} is not readable JSON"})
    return found
