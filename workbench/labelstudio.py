"""The one adapter around `label_studio_sdk`.

Everything the workbench asks of a Label Studio server goes through `LabelStudio`. It maps SDK and HTTP
failures to the workbench's own errors (naming the server and the fix, never the token), returns plain dicts
and lists, and lets no generated SDK type leak out.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from label_studio_sdk.client import LabelStudio as _SdkClient
from label_studio_sdk.core.api_error import ApiError

from workbench.errors import AuthError, ProjectNotFoundError, ServerError

# Imports and exports of large projects take minutes on a 2-core machine; the SDK's 60 s default is too short.
# Only the bulk calls (task listing, import, export) get this long; a server that accepts a connection and never
# answers must not hold a small call (or the token exchange) for 15 minutes.
REQUEST_TIMEOUT = 900.0
QUICK_TIMEOUT = 60.0
CONNECT_TIMEOUT = 10.0
# Never let the SDK resend a POST on its own: a retried import creates its tasks twice. We reconcile by key.
NO_RETRY = {"max_retries": 0}
LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class ServerVersion:
    """What the server says about itself."""

    version: str
    user_email: str
    user_id: int


class LabelStudio:
    """A connection to one Label Studio server, authenticated with a token the adapter never reveals."""

    def __init__(self, url: str, api_key: str, *, timeout: float = REQUEST_TIMEOUT) -> None:
        self.url = url.rstrip("/")
        host = _http_host(self.url)
        self._bulk: dict[str, Any] = {"timeout": timeout}
        # Small calls and the token exchange use the client's default; loopback never goes through a proxy.
        self._http = httpx.Client(
            timeout=httpx.Timeout(QUICK_TIMEOUT, connect=CONNECT_TIMEOUT),
            follow_redirects=True,
            trust_env=host not in LOOPBACK,
        )
        try:
            self._sdk = _SdkClient(base_url=self.url, api_key=api_key, httpx_client=self._http)
        except ApiError as exc:  # the SDK checks a JWT's expiry before sending anything
            self._http.close()
            detail = exc.body.get("detail") if isinstance(exc.body, dict) else None
            raise AuthError(
                f"The API key for the Label Studio server at {self.url} cannot be used: "
                f"{detail or 'it is not a valid token'} For the local server run `workbench server start` to mint "
                "a fresh one; for your own server set LABEL_STUDIO_API_KEY to a valid personal access token "
                "(Account & Settings -> Personal Access Token)."
            ) from None

    def __repr__(self) -> str:
        return f"LabelStudio(url={self.url!r})"

    def close(self) -> None:
        """Close the connections (also done when the client is garbage-collected)."""
        self._http.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self._http.close()

    @contextlib.contextmanager
    def _calling(self, what: str, project_id: int | None = None) -> Iterator[None]:
        """Turn SDK and transport failures into one-paragraph workbench errors."""
        try:
            yield
        except ApiError as exc:
            status = exc.status_code
            if status is not None and 200 <= status < 300:
                raise ServerError(
                    f"The server at {self.url} answered, but not like Label Studio's API, while trying to {what} "
                    f"(got {_short(exc.body, 120)}). Check that LABEL_STUDIO_URL points at a Label Studio server "
                    "(version 1.23 or later)."
                ) from None
            if status in (401, 403):
                raise AuthError(
                    f"The Label Studio server at {self.url} rejected the API token while trying to {what} "
                    f"(HTTP {status}). The token is wrong, revoked or expired: for the local server run "
                    "`workbench server start` to mint a fresh one; for your own server set "
                    "LABEL_STUDIO_API_KEY to a valid personal access token (Account & Settings -> Personal "
                    "Access Token)."
                ) from None
            if status == 404 and project_id is not None:
                raise ProjectNotFoundError(
                    f"Label Studio project {project_id} is no longer on the server at {self.url} (HTTP 404 "
                    f"while trying to {what}). If it was deleted on purpose, remove .workbench/project.json "
                    "and run `workbench push` to create a new project; otherwise point the workbench back at "
                    "the server that holds it."
                ) from None
            raise ServerError(
                f"The Label Studio server at {self.url} answered HTTP {status} while trying to {what}: "
                f"{_short(exc.body)}. Check the server log (.workbench/labelstudio/server.log for the local "
                "server) and run the command again; nothing was written locally."
            ) from None
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise ServerError(
                f"The Label Studio server at {self.url} is not reachable ({type(exc).__name__}) while trying "
                f"to {what}. Start the local server with `workbench server start`, or check LABEL_STUDIO_URL "
                "if you use your own server."
            ) from None
        except httpx.TimeoutException as exc:
            raise ServerError(
                f"The Label Studio server at {self.url} did not answer in time while trying to {what} "
                f"({type(exc).__name__}). Check that LABEL_STUDIO_URL points at Label Studio and that it is not "
                "overloaded (`workbench server status`), then run the command again; the workbench reconciles by "
                "task key, so nothing is duplicated."
            ) from None
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            raise ServerError(
                f"The Label Studio URL {self.url!r} is not usable ({type(exc).__name__}). Set LABEL_STUDIO_URL to "
                "an http(s) URL such as http://127.0.0.1:8080, or unset it to use the local server."
            ) from None
        except httpx.TransportError as exc:
            raise ServerError(
                f"The connection to the Label Studio server at {self.url} broke while trying to {what} "
                f"({type(exc).__name__}). Check that the server is running (`workbench server status`) and run "
                "the command again; the workbench reconciles by task key, so nothing is duplicated."
            ) from None
        except ValueError as exc:  # JSON or pydantic parsing: whatever answered is not Label Studio's API
            raise ServerError(
                f"The server at {self.url} answered something that is not Label Studio's API while trying to "
                f"{what} ({type(exc).__name__}). Check that LABEL_STUDIO_URL points at a Label Studio server "
                "(version 1.23 or later)."
            ) from None

    # --- server -----------------------------------------------------------------------------------------------
    def whoami(self) -> ServerVersion:
        """Check the server answers and the token is accepted; return the server version and our user."""
        with self._calling("check the connection"):
            version = self._sdk.versions.get()
            user = self._sdk.users.whoami()
        return ServerVersion(
            version=str(getattr(version, "release", None) or getattr(version, "label_studio_os_package", "")),
            user_email=str(user.email),
            user_id=int(user.id),
        )

    def user_emails(self) -> dict[int, str]:
        """Every user's e-mail by id, to show progress per annotator."""
        with self._calling("list the users"):
            return {int(user.id): str(user.email) for user in self._sdk.users.list()}

    # --- projects ---------------------------------------------------------------------------------------------
    def find_project(self, title: str) -> int | None:
        """The id of the (oldest) project with this title, if any."""
        with self._calling(f"look up project {title!r}"):
            matches = [p.id for p in self._sdk.projects.list(title=title) if p.title == title]
        return min(matches) if matches else None

    def project_exists(self, project_id: int) -> bool:
        try:
            with self._calling("look up the project", project_id):
                self._sdk.projects.get(id=project_id)
        except ProjectNotFoundError:
            return False
        return True

    def create_project(self, **settings: Any) -> int:
        with self._calling(f"create project {settings.get('title')!r}"):
            project = self._sdk.projects.create(**settings)
        return int(project.id)

    def update_project(self, project_id: int, **settings: Any) -> None:
        with self._calling("update the project settings", project_id):
            self._sdk.projects.update(id=project_id, **settings)

    def project_info(self, project_id: int) -> dict[str, Any]:
        with self._calling("read the project", project_id):
            project = self._sdk.projects.get(id=project_id)
        return {
            "id": int(project.id),
            "title": project.title,
            "task_number": int(project.task_number or 0),
            "label_config": project.label_config,
        }

    # --- tasks ------------------------------------------------------------------------------------------------
    def task_keys(self, project_id: int, *, page_size: int = 5000) -> dict[str, int]:
        """Every task of the project by its workbench key (`data.key`); tasks without a key are ignored."""
        keys: dict[str, int] = {}
        with self._calling("list the project's tasks", project_id):
            pager = self._sdk.tasks.list(
                project=project_id, include="id,data", page_size=page_size, request_options=self._bulk
            )
            for task in pager:
                key = (task.data or {}).get("key")
                if key is not None:
                    keys.setdefault(str(key), int(task.id))
        return keys

    def import_tasks(self, project_id: int, tasks: Sequence[dict[str, Any]]) -> list[int]:
        """Import one batch in one request, never retried by the SDK; return the new task ids in input order."""
        with self._calling(f"import {len(tasks)} tasks", project_id):
            response = self._sdk.projects.import_tasks(
                id=project_id, request=list(tasks), return_task_ids=True, request_options={**NO_RETRY, **self._bulk}
            )
        return [int(task_id) for task_id in (response.task_ids or [])]

    # --- export -----------------------------------------------------------------------------------------------
    def export_to(self, project_id: int, path: Path) -> None:
        """Stream a full JSON export (every task, annotation, skip and prediction) into `path`."""
        with self._calling("create an export snapshot", project_id):
            export = self._sdk.projects.exports.create(
                id=project_id,
                title="workbench pull",
                serialization_options={"predictions": {"only_id": False}, "drafts": {"only_id": False}},
                task_filter_options={"only_with_annotations": False},
                annotation_filter_options={"usual": True, "skipped": True, "ground_truth": True},
                request_options={**NO_RETRY, **self._bulk},  # a resent POST makes a second export
            )
        export_id = int(export.id)
        try:
            with self._calling("download the export snapshot", project_id), path.open("wb") as handle:
                for chunk in self._sdk.projects.exports.download(
                    id=project_id, export_pk=export_id, export_type="JSON", request_options=self._bulk
                ):
                    handle.write(chunk)
        finally:
            # Export files pile up in the server's data folder otherwise.
            with contextlib.suppress(ServerError), self._calling("delete the export snapshot", project_id):
                self._sdk.projects.exports.delete(id=project_id, export_pk=export_id)


def _http_host(url: str) -> str:
    """The host of an http(s) URL; anything else is a ServerError naming the URL and the fix."""
    try:
        parts = urlsplit(url)
        scheme, host = parts.scheme, parts.hostname
    except ValueError:  # e.g. an unclosed IPv6 bracket
        scheme, host = "", None
    if scheme not in ("http", "https") or not host:
        raise ServerError(
            f"The Label Studio URL {url!r} is not an http(s) URL. Set LABEL_STUDIO_URL to one such as "
            "http://127.0.0.1:8080 (or unset it and run `workbench server start` for the local server)."
        )
    return host


def _short(body: Any, limit: int = 300) -> str:
    text = str(body)
    return text if len(text) <= limit else text[:limit] + "..."
