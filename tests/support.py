"""Small helpers shared by test modules."""

from __future__ import annotations

import hashlib
from pathlib import Path


def tree_digest(root: Path) -> str:
    """Every path under root (hidden ones too) and every file's bytes: equal digests mean nothing changed."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()
