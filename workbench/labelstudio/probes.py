"""Unauthenticated questions to a server: is Label Studio (or the workbench's model backend) up, and which release.

Used by the server lifecycle and the backend's process control, which poll them; no token goes with them.
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx

from workbench.errors import ServerError
from workbench.labelstudio.transport import checked_url, http_client


def backend_health(url: str, username: str, password: str) -> dict[str, Any] | None:
    """What the workbench's model backend at `url` answers on /health with its basic auth, or None when it does not
    answer UP (down, refusing the login, or not the backend): `workbench backend status` asks this."""
    try:
        with http_client(url, timeout=5) as http:
            response = http.get(f"{checked_url(url)}/health", auth=(username, password))
        body = response.json()
    except (httpx.HTTPError, ValueError, ServerError):
        return None
    return body if response.status_code == 200 and isinstance(body, dict) and body.get("status") == "UP" else None


def is_healthy(url: str) -> bool:
    """The server at `url` answers /health with UP (no token needed); any failure is simply "not healthy"."""
    try:
        with http_client(url, timeout=3) as http:
            response = http.get(f"{checked_url(url)}/health")
        return response.status_code == 200 and response.json().get("status") == "UP"
    except (httpx.HTTPError, ValueError, ServerError, AttributeError):
        return False


def release_of(url: str) -> str | None:
    """The server's release from /version (served as JSON wrapped in <pre>, so both are accepted), or None."""
    try:
        with http_client(url, timeout=10) as http:
            text = http.get(f"{checked_url(url)}/version").text
    except (httpx.HTTPError, ServerError):
        return None
    text = re.sub(r"</?pre>", "", text).strip()
    try:
        release = json.loads(text).get("release")
    except (ValueError, AttributeError):
        return None
    return release if isinstance(release, str) else None
