"""The SDK adapter: everything the workbench asks of a Label Studio server through `label_studio_sdk`.

`LabelStudio` maps SDK and HTTP failures to the workbench's own errors (through `transport`, naming the server and
the fix, never the token), returns plain dicts and lists, and lets no generated SDK type leak out.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from label_studio_sdk.client import LabelStudio as _SdkClient
from label_studio_sdk.core.api_error import ApiError

from workbench.errors import AuthError, BackendError, ProjectNotFoundError, ServerError
from workbench.labelstudio.transport import (
    ENV_API_KEY,
    REQUEST_TIMEOUT,
    calling,
    checked_url,
    http_client,
    refuse,
    short,
)

# Never let the SDK resend a POST on its own: a retried import creates its tasks twice. We reconcile by key.
NO_RETRY = {"max_retries": 0}
# The Data Manager tab an incremental pull exports through; tabs are shared by the organisation, so it lives only
# while the pull runs (one left by a killed pull is removed by the next).
PULL_VIEW_TITLE = "workbench pull (temporary)"
STATUS_VIEW_TITLE = "workbench status (temporary)"
# Bytes read from the socket at a time while an export downloads.
DOWNLOAD_CHUNK = 1 << 20


@dataclass(frozen=True)
class EncodedTasks:
    """Tasks encoded as the JSON body of one import request (see `encode_tasks`)."""

    body: bytes
    count: int


def encode_tasks(tasks: Sequence[dict[str, Any]]) -> EncodedTasks:
    """Tasks as the body of an import request, JSON as the SDK's HTTP client writes it (a lone surrogate, which
    UTF-8 cannot carry, goes as its escape)."""
    try:
        body = json.dumps(tasks, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")
    except UnicodeEncodeError:
        body = json.dumps(tasks, separators=(",", ":"), allow_nan=False).encode("ascii")
    return EncodedTasks(body, len(tasks))


@dataclass(frozen=True)
class ExportInfo:
    """What the server said about an export it made: when it began (its own clock) and how many tasks it holds."""

    started_at: str
    tasks: int | None


class LabelStudio:
    """A connection to one Label Studio server, authenticated with a token the adapter never reveals."""

    def __init__(self, url: str, api_key: str, *, timeout: float = REQUEST_TIMEOUT) -> None:
        self.url = checked_url(url)
        self._bulk: dict[str, Any] = {"timeout": timeout}
        # Small calls and the token exchange use the client's default timeout; only bulk calls get `timeout`.
        self._http = http_client(self.url)
        try:
            self._sdk = _SdkClient(base_url=self.url, api_key=api_key, httpx_client=self._http)
        except ApiError as exc:  # the SDK checks a JWT's expiry before sending anything
            self._http.close()
            detail = exc.body.get("detail") if isinstance(exc.body, dict) else None
            raise AuthError(
                f"The API key for the Label Studio server at {self.url} cannot be used: "
                f"{detail or 'it is not a valid token'} For the local server run `workbench server start` to mint "
                f"a fresh one; for your own server set {ENV_API_KEY} to a valid personal access token "
                "(Account & Settings -> Personal Access Token)."
            ) from None

    def __repr__(self) -> str:
        return f"LabelStudio(url={self.url!r})"

    def close(self) -> None:
        """Close the connections (also done when the client is garbage-collected)."""
        self._http.close()

    def __enter__(self) -> LabelStudio:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self._http.close()

    def _calling(self, what: str, project_id: int | None = None) -> contextlib.AbstractContextManager[None]:
        return calling(self.url, what, project_id)

    # --- server and users ---------------------------------------------------------------------------------------
    def server_version(self) -> str:
        """Check the server answers and the token is accepted; return the server's release."""
        with self._calling("check the connection"):
            version = self._sdk.versions.get()
            self._sdk.users.whoami()
        return str(getattr(version, "release", None) or getattr(version, "label_studio_os_package", ""))

    def current_user(self) -> dict[str, Any]:
        """The user the token belongs to: its id and e-mail."""
        with self._calling("ask who the API key belongs to"):
            user = self._sdk.users.whoami()
        return {"id": int(user.id), "email": str(user.email)}

    def user_emails(self) -> dict[int, str]:
        """Every user's e-mail by id, to show progress per annotator."""
        with self._calling("list the users"):
            return {int(user.id): str(user.email) for user in self._sdk.users.list()}

    def invite_token(self) -> str:
        """The organisation's invite-link token, with which a new account can sign up."""
        with self._calling("get the invite link"):
            token = self._sdk.organizations.invites.get_invite_link().token
        if not isinstance(token, str) or not token:
            raise ServerError(f"Label Studio at {self.url} returned no invite token. Check the admin account's role.")
        return token

    def reset_invite(self) -> None:
        """Invalidate the current invite link (the server logs sign-up URLs, and a live link lets anyone join)."""
        with self._calling("reset the invite link after a sign-up (reset it by hand under Organization -> Add "
                           "People -> Reset link)"):
            self._sdk.organizations.reset_token()

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

    def labels_in_use(self, project_id: int) -> dict[str, int]:
        """How many annotated regions use each label in the project (Label Studio's project summary)."""
        summary = self._get(f"api/projects/{project_id}/summary/", "read the project summary", project_id)
        used: dict[str, int] = {}
        for per_label in (summary.get("created_labels") or {}).values():
            for label, count in (per_label or {}).items():
                used[str(label)] = used.get(str(label), 0) + int(count)
        return used

    def _get(
        self, path: str, what: str, project_id: int | None = None, params: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """GET an API path the SDK has no method for, with the SDK's authentication and our error mapping."""
        return self._request("GET", path, what, project_id, params=params)

    def _request(
        self, method: str, path: str, what: str, project_id: int | None = None, *, params: dict[str, Any] | None = None,
        body: bytes | None = None, options: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Send one request through the SDK's own HTTP client (its authentication, its token refresh), with our
        error mapping; `body` is JSON already encoded. The answer's JSON."""
        with self._calling(what, project_id):
            response = self._sdk._client_wrapper.httpx_client.request(
                path, method=method, params=params, content=body, request_options=options,
                headers={"content-type": "application/json"} if body is not None else None,
            )  # fmt: skip
            if response.status_code >= 300:
                try:
                    detail: Any = response.json()
                except ValueError:
                    detail = response.text[:300]
                refuse(self.url, response.status_code, detail, what, project_id)
            return dict(response.json())

    def project_title(self, project_id: int) -> str:
        with self._calling("read the project", project_id):
            return str(self._sdk.projects.get(id=project_id).title)

    def project_created_at(self, project_id: int) -> str:
        """When the project was made (the server's clock): with its id, which project this is."""
        with self._calling("read the project", project_id):
            return _iso(self._sdk.projects.get(id=project_id).created_at)

    # --- tasks ------------------------------------------------------------------------------------------------
    def tasks_data(self, project_id: int, *, page_size: int = 5000) -> list[dict[str, Any]]:
        """Every task of the project, in id order: its `id`, `data`, how many `submitted` and `skipped`
        annotations it has, and the `model_versions` of its predictions. Read as plain JSON a page at a time (the
        SDK's typed tasks cost ~1 ms each to build)."""
        include = "id,data,total_annotations,cancelled_annotations,predictions_model_versions"
        tasks: list[dict[str, Any]] = []
        page, total = 1, None
        while total is None or len(tasks) < total:
            answer = self._request("GET", "api/tasks", "list the project's tasks", project_id, options=self._bulk,
                                   params={"project": project_id, "include": include, "fields": "all",
                                           "page_size": page_size, "page": page})  # fmt: skip
            listed = answer.get("tasks") or []
            total = int(answer.get("total") or 0)
            if not listed:
                break
            tasks += [
                {
                    "id": int(task["id"]),
                    "data": dict(task.get("data") or {}),
                    "submitted": int(task.get("total_annotations") or 0),
                    "skipped": int(task.get("cancelled_annotations") or 0),
                    "model_versions": sorted(
                        {v.strip() for v in str(task.get("predictions_model_versions") or "").split(",")} - {""}
                    ),
                }
                for task in listed
            ]
            page += 1
        return sorted(tasks, key=lambda task: task["id"])

    def task_keys(self, project_id: int) -> dict[str, int]:
        """Every task of the project by its workbench key (`data.key`); tasks without a key are ignored."""
        keys: dict[str, int] = {}
        for task in self.tasks_data(project_id):
            if task["data"].get("key") is not None:
                keys.setdefault(str(task["data"]["key"]), task["id"])
        return keys

    def add_predictions(self, project_id: int, predictions: Sequence[dict[str, Any]]) -> None:
        """Add predictions (each with its `task`) in one request; Label Studio drops the ones it finds invalid
        without saying which, so a short count is an error."""
        with self._calling(f"add {len(predictions)} predictions", project_id):
            response = self._sdk.projects.import_predictions(
                id=project_id, request=list(predictions), request_options={**NO_RETRY, **self._bulk}
            )
        created = int(getattr(response, "created", 0) or 0)
        if created != len(predictions):
            raise ServerError(
                f"Label Studio at {self.url} stored {created} of {len(predictions)} predictions sent to project "
                f"{project_id} (it drops predictions whose labels its labeling interface does not have). Check that "
                "the project's labels are the config's (`workbench push` sets them), then push again."
            )

    def task(self, task_id: int) -> dict[str, Any]:
        """One task with its annotations and predictions, as plain JSON (timestamps as ISO strings)."""
        with self._calling(f"read task {task_id}"):
            return dict(self._sdk.tasks.get(id=str(task_id)).model_dump(mode="json"))

    def update_task_data(self, task_id: int, data: dict[str, Any]) -> None:
        """Replace a task's data (Label Studio replaces it whole: `data` must hold every field)."""
        with self._calling(f"update task {task_id}"):
            self._sdk.tasks.update(id=str(task_id), data=data)

    def update_annotation(self, annotation_id: int, result: list[dict[str, Any]]) -> str:
        """Replace an annotation's result (its author stays its author); return its new `updated_at`."""
        with self._calling(f"update annotation {annotation_id}"):
            annotation = self._sdk.annotations.update(id=annotation_id, result=result)
        return _iso(annotation.updated_at)

    def replace_predictions(self, task_id: int, old: Sequence[int], prediction: dict[str, Any] | None) -> None:
        """Delete the predictions `old` of a task (made for a text it no longer has) and add `prediction`."""
        with self._calling(f"replace the predictions of task {task_id}"):
            for prediction_id in old:
                self._sdk.predictions.delete(id=prediction_id)
            if prediction:
                self._sdk.predictions.create(task=task_id, **prediction)

    def import_tasks(self, project_id: int, tasks: Sequence[dict[str, Any]] | EncodedTasks) -> list[int]:
        """Import one batch in one request, never retried by the SDK; return the new task ids in input order.

        The tasks go out as JSON bytes through the SDK's HTTP client (`encode_tasks`, which may run ahead in
        another thread), not through the SDK's per-value `jsonable_encoder` (~0.2 ms a task)."""
        batch = tasks if isinstance(tasks, EncodedTasks) else encode_tasks(tasks)
        answer = self._request("POST", f"api/projects/{project_id}/import", f"import {batch.count} tasks",
                               project_id, params={"return_task_ids": True}, body=batch.body,
                               options={**NO_RETRY, **self._bulk})  # fmt: skip
        return [int(task_id) for task_id in (answer.get("task_ids") or [])]

    # --- ML backends (the workbench's model backend, `workbench.backend`) --------------------------------------
    def ml_backends(self, project_id: int) -> list[dict[str, Any]]:
        """The project's ML backends: id, title, url, state ("CO" connected, "DI", "ER", "TR"), auth; Label Studio
        asks each one for its health and setup while listing them."""
        with self._calling("list the project's ML backends", project_id):
            return [_ml_backend(backend) for backend in self._sdk.ml.list(project=project_id)]

    def add_ml_backend(self, project_id: int, *, url: str, title: str, username: str, password: str) -> dict[str, Any]:
        """Connect the ML backend at `url`, with HTTP basic auth; Label Studio checks its /health and /setup first
        (refusing a backend that does not answer), and registers `<url>/webhook` as a project webhook.

        Label Studio 1.23.2 saves a backend on a loopback address (allowed with ML_BLOCK_LOCAL_IP off) and then
        fails to register that webhook (its SSRF check for webhooks stays on) and answers 403: the entry is there
        and connected, only the webhook is not. So a 403 is checked against the project's backends."""
        try:
            return self._ml_call(f"connect the ML backend at {url}", project_id, url, lambda: self._sdk.ml.create(
                project=project_id, url=url, title=title, auth_method="BASIC_AUTH", basic_auth_user=username,
                basic_auth_pass=password, is_interactive=False))  # fmt: skip
        except BackendError:
            saved = [b for b in self.ml_backends(project_id) if b["title"] == title and b["url"] == url]
            if saved:
                return saved[0]
            raise

    def update_ml_backend(self, backend_id: int, project_id: int, *, url: str, username: str, password: str) -> dict[
            str, Any]:  # fmt: skip
        """Point an ML backend of the project at `url` with this basic auth (checked by Label Studio as on adding)."""
        return self._ml_call(f"update the ML backend at {url}", project_id, url, lambda: self._sdk.ml.update(
            id=backend_id, url=url, auth_method="BASIC_AUTH", basic_auth_user=username, basic_auth_pass=password))

    def remove_ml_backend(self, backend_id: int, project_id: int) -> None:
        with self._calling(f"remove ML backend {backend_id}", project_id):
            self._sdk.ml.delete(id=backend_id)

    def remove_webhooks(self, project_id: int, url: str) -> int:
        """Delete the project's webhooks that post to `url`; how many there were."""
        with self._calling("list the project's webhooks", project_id):
            found = [hook.id for hook in self._sdk.webhooks.list(project=str(project_id))
                     if hook.url == url and hook.project == project_id and hook.id is not None]  # fmt: skip
            for hook_id in found:
                self._sdk.webhooks.delete(id=int(hook_id))
        return len(found)

    def _ml_call(self, what: str, project_id: int, url: str, call: Any) -> dict[str, Any]:
        """An ML backend create/update: Label Studio's refusals (400: the backend did not answer its checks; 403: a
        local address it may not call) name the backend and the fix, not the API token."""
        with self._calling(what, project_id):
            try:
                return _ml_backend(call())
            except ApiError as exc:
                if exc.status_code not in (400, 403):
                    raise
                said = short(exc.body)
        if "reserved network address" in said:
            raise BackendError(
                f"Label Studio at {self.url} refuses to call an ML backend on a local address ({url}): its "
                "ML_BLOCK_LOCAL_IP setting is on. The workbench's local server turns it off; for your own server set "
                "ML_BLOCK_LOCAL_IP=false in its environment (see docs/backend.md), or leave the backend unconnected."
            )
        raise BackendError(
            f"Label Studio at {self.url} could not connect the model backend at {url}: {said}. Check "
            "`workbench backend status` and the backend's log (.workbench/backend/backend.log), then push again."
        )

    # --- Data Manager tabs -------------------------------------------------------------------------------------
    def views(self, project_id: int) -> list[dict[str, Any]]:
        """The project's Data Manager tabs: `id` and `data` (title, filters); tabs are shared by the organisation."""
        with self._calling("list the Data Manager tabs", project_id):
            listed = self._sdk.views.list(project=project_id)
        return [{"id": int(view.id), "data": dict(view.data or {})} for view in listed
                if view.id is not None and int(view.project) == project_id]  # fmt: skip

    def create_view(self, project_id: int, data: dict[str, Any]) -> int:
        """A new Data Manager tab (`data`: title, filters); its id."""
        with self._calling(f"create the Data Manager tab {data.get('title')!r}", project_id):
            view = self._sdk.views.create(project=project_id, data=data, request_options=NO_RETRY)
        return int(view.id)

    def update_view(self, project_id: int, view_id: int, data: dict[str, Any]) -> None:
        with self._calling(f"update the Data Manager tab {data.get('title')!r}", project_id):
            self._sdk.views.update(id=str(view_id), project=project_id, data=data)

    def labeling_setup(self, project_id: int) -> dict[str, str]:
        """The project's labeling interface (`label_config`) and the `model_version` it shows."""
        with self._calling("read the project", project_id):
            project = self._sdk.projects.get(id=project_id)
        return {"label_config": str(project.label_config or ""), "model_version": str(project.model_version or "")}

    def count_tasks(self, project_id: int, *, max_id: int) -> int:
        """How many tasks of the project have an id up to `max_id` (one count on the server, no task is sent)."""
        query = {"filters": {"conjunction": "and", "items": [
            {"filter": "filter:tasks:id", "operator": "less_or_equal", "type": "Number", "value": max_id}]}}
        page = self._get("api/tasks", "count the project's tasks", project_id,
                         {"project": project_id, "include": "id", "page_size": 1, "query": json.dumps(query)})
        return int(page["total"])  # fmt: skip

    def task_ids(self, project_id: int, *, page_size: int = 10_000) -> set[int]:
        """The id of every task of the project (the cheapest full listing the server offers)."""
        with self._calling("list the project's task ids", project_id):
            pager = self._sdk.tasks.list(project=project_id, include="id", page_size=page_size,
                                         request_options=self._bulk)  # fmt: skip
            return {int(task.id) for task in pager}

    # --- export -----------------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def changed_since(self, project_id: int, since: str) -> Iterator[int]:
        """A Data Manager tab of the tasks whose `updated_at` is `since` or later (`%Y-%m-%dT%H:%M:%S.%fZ`, the only
        form the server parses), removed again afterwards; yields its id, for `export_to(view=...)`."""
        with self._calling("list the Data Manager tabs", project_id):
            stale = [view.id for view in self._sdk.views.list(project=project_id)
                     if (view.data or {}).get("title") == PULL_VIEW_TITLE]  # fmt: skip
            for view_id in stale:
                self._sdk.views.delete(id=str(view_id))
        changed = {"filter": "filter:tasks:updated_at", "operator": "greater_or_equal", "type": "Datetime",
                   "value": since}  # fmt: skip
        with self._calling("create a Data Manager tab of the changed tasks", project_id):
            view = self._sdk.views.create(
                project=project_id,
                data={"title": PULL_VIEW_TITLE, "filters": {"conjunction": "and", "items": [changed]}},
            )
        try:
            yield int(view.id)
        finally:
            with contextlib.suppress(ServerError), self._calling("remove the pull's Data Manager tab", project_id):
                self._sdk.views.delete(id=str(view.id))

    @contextlib.contextmanager
    def annotated_tasks(self, project_id: int) -> Iterator[int]:
        """A Data Manager tab of the tasks with an annotation (submitted or skipped), removed again afterwards;
        yields its id, for `export_stream(view=...)`."""
        items = [{"filter": f"filter:tasks:{field}", "operator": "greater", "type": "Number", "value": 0}
                 for field in ("total_annotations", "cancelled_annotations")]  # fmt: skip
        with self._calling("create a Data Manager tab of the annotated tasks", project_id):
            view = self._sdk.views.create(
                project=project_id,
                data={"title": STATUS_VIEW_TITLE, "filters": {"conjunction": "or", "items": items}},
            )
        try:
            yield int(view.id)
        finally:
            with contextlib.suppress(ServerError), self._calling("remove the status's Data Manager tab", project_id):
                self._sdk.views.delete(id=str(view.id))

    def export_to(self, project_id: int, path: Path, *, view: int | None = None) -> ExportInfo:
        """Stream a JSON export (every task, or the tasks of the Data Manager tab `view`, with every annotation,
        skip, prediction and draft) into `path`."""
        with self.export_stream(project_id, view=view) as (export, chunks), path.open("wb") as handle:
            for chunk in chunks:
                handle.write(chunk)
        return export

    @contextlib.contextmanager
    def export_stream(
        self, project_id: int, *, view: int | None = None
    ) -> Iterator[tuple[ExportInfo, Iterator[bytes]]]:
        """A JSON export (as `export_to` makes it) and its bytes as they are downloaded, to be read inside the block;
        the export is removed from the server when the block ends."""
        tasks: dict[str, Any] = {"view": view} if view is not None else {"only_with_annotations": False}
        with self._calling("create an export snapshot", project_id):
            export = self._sdk.projects.exports.create(
                id=project_id,
                title="workbench pull",
                serialization_options={"predictions": {"only_id": False}, "drafts": {"only_id": False}},
                task_filter_options=tasks,
                annotation_filter_options={"usual": True, "skipped": True, "ground_truth": True},
                request_options={**NO_RETRY, **self._bulk},  # a resent POST makes a second export
            )
        export_id = int(export.id)
        counted = (export.counters or {}).get("task_number") if isinstance(export.counters, dict) else None
        info = ExportInfo(started_at=_iso(export.created_at) if export.created_at else "",
                          tasks=int(counted) if isinstance(counted, int) else None)  # fmt: skip

        def chunks() -> Iterator[bytes]:
            with self._calling("download the export snapshot", project_id):
                yield from self._sdk.projects.exports.download(
                    id=project_id, export_pk=export_id, export_type="JSON",
                    request_options={**self._bulk, "chunk_size": DOWNLOAD_CHUNK},
                )  # fmt: skip

        stream = chunks()
        try:
            yield info, stream
        finally:
            stream.close()
            # Export files pile up in the server's data folder otherwise.
            with contextlib.suppress(ServerError), self._calling("delete the export snapshot", project_id):
                self._sdk.projects.exports.delete(id=project_id, export_pk=export_id)


def _iso(moment: Any) -> str:
    """A timestamp as Label Studio writes it in exports: ISO 8601 in UTC with microseconds and a `Z`."""
    if isinstance(moment, datetime):
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return str(moment or "")


def _ml_backend(backend: Any) -> dict[str, Any]:
    def plain(value: Any) -> Any:
        return getattr(value, "value", value)

    return {"id": int(backend.id), "title": str(backend.title or ""), "url": str(backend.url),
            "state": plain(backend.state), "auth_method": plain(backend.auth_method),
            "basic_auth_user": backend.basic_auth_user, "model_version": backend.model_version,
            "error_message": backend.error_message}  # fmt: skip
