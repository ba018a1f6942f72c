"""The backend's web app: Label Studio's ML backend protocol, as Label Studio 1.23 calls it, on Starlette.

Starlette (with uvicorn serving it) because the protocol is a handful of JSON endpoints: a small, maintained ASGI
toolkit does all of it without a validation layer we would not use (FastAPI) or a WSGI server's thread per
request (Flask + waitress). The reference package `label-studio-ml` on the registry (1.0.9, 2023) predates the
protocol Label Studio 1.23 speaks and builds a new model object per request; the workbench loads its model once.

- `GET /health`, `GET /`: `{"status": "UP", "model_class", "model_version", "job"}` (Label Studio's health check).
- `POST /setup`: `{"model_version"}`; Label Studio marks the backend connected when this answers, and skips tasks
  that already hold a prediction of that version.
- `POST /predict`: `{"tasks": [...]}` -> `{"results": [{"result", "score", "model_version"}, ...]}`, one per task,
  in order, each exactly what `preannotate` gives the task's `data.text` (`served`).
- `POST /webhook`: START_TRAINING starts the training job (`training`); the annotation events are acknowledged
  and not used (the job pulls what it needs). `POST /train` (the legacy call) starts the job too.
- `GET /versions`, `GET /metrics`: the current version; `{}`.

Every request must carry the backend's basic-auth login (`files`): anything else is answered 401. The log gets
one line per request (method, path, status, milliseconds), never a body: Label Studio's /setup carries its API
token and /predict the tasks' text.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import time
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from workbench.backend.files import BackendLogin
from workbench.backend.served import ServedModel
from workbench.backend.training import Trainer, job_status
from workbench.errors import WorkbenchError

MODEL_CLASS = "workbench"
TRAINING_EVENTS = ("START_TRAINING",)
log = logging.getLogger("workbench.backend")


def create_app(served: ServedModel, trainer: Trainer, login: BackendLogin) -> Starlette:
    """The backend's app: the routes above, behind basic auth, with one log line per request."""

    async def health(request: Request) -> Response:
        job = job_status(trainer.files)
        return JSONResponse({"status": "UP", "model_class": MODEL_CLASS, "model_version": served.version,
                             "job": _job_summary(job.as_dict()) if job else None})  # fmt: skip

    async def setup(request: Request) -> Response:
        await _json(request)  # read, never kept: it carries Label Studio's API token
        loaded = await run_in_threadpool(served.current)
        return JSONResponse({"model_version": loaded.version})

    async def predict(request: Request) -> Response:
        body = await _json(request)
        tasks = body.get("tasks") if isinstance(body, dict) else None
        if not isinstance(tasks, list):
            return _error(400, "The request has no list of tasks: POST {\"tasks\": [{\"data\": {\"text\": ...}}]}.")
        texts = [(task.get("data") or {}).get("text") if isinstance(task, dict) else None for task in tasks]
        results = await run_in_threadpool(served.predict, texts)
        return JSONResponse({"results": results, "model_version": served.version})

    async def webhook(request: Request) -> Response:
        body = await _json(request)
        action = body.get("action") if isinstance(body, dict) else None
        if action in TRAINING_EVENTS:
            return await _press(trainer, _project_id(body.get("project")))
        if isinstance(action, str) and action.startswith("ANNOTATION"):
            return JSONResponse({"status": "ignored", "reason": "the workbench trains when Start training is "
                                 "pressed; the job pulls every annotation then"})  # fmt: skip
        return JSONResponse({"status": "Unknown event"})

    async def train(request: Request) -> Response:
        body = await _json(request)
        return await _press(trainer, _project_id(body.get("project") if isinstance(body, dict) else None))

    async def versions(request: Request) -> Response:
        loaded = await run_in_threadpool(served.current)
        return JSONResponse({"versions": [loaded.version]})

    async def metrics(request: Request) -> Response:
        return JSONResponse({})

    routes = [
        Route("/", health, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/setup", setup, methods=["POST"]),
        Route("/predict", predict, methods=["POST"]),
        Route("/webhook", webhook, methods=["POST"]),
        Route("/train", train, methods=["POST"]),
        Route("/versions", versions, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
    return Starlette(
        routes=routes,
        middleware=[Middleware(_RequestLog), Middleware(_BasicAuth, login=login)],
        exception_handlers={WorkbenchError: _workbench_error, _BadRequest: _bad_request},
    )


async def _press(trainer: Trainer, project_id: int | None) -> Response:
    status, answer = await run_in_threadpool(trainer.press, project_id)
    return JSONResponse(answer, status_code=status)


def _project_id(project: Any) -> int | None:
    """Label Studio names the project as a dict with its id (webhook) or as "<id>.<created unix time>" (/train)."""
    value = project.get("id") if isinstance(project, dict) else project
    try:
        return int(str(value).split(".")[0]) if value is not None else None
    except ValueError:
        return None


def _job_summary(job: dict[str, Any]) -> dict[str, Any]:
    return {key: job[key] for key in ("id", "state", "stage", "started_at", "finished_at", "message")}


class _BadRequest(Exception):
    pass


async def _json(request: Request) -> Any:
    try:
        return json.loads(await request.body() or b"{}")
    except ValueError:
        raise _BadRequest() from None


async def _bad_request(request: Request, exc: Exception) -> Response:
    return _error(400, "The request body is not JSON.")


async def _workbench_error(request: Request, exc: Exception) -> Response:
    """A model that cannot be loaded (after a switch), a broken config: one line in the log, the message to
    Label Studio (which shows it on the backend's card); the model loaded before keeps being tried again."""
    log.error("%s %s failed: %s", request.method, request.url.path, " ".join(str(exc).split()))
    return _error(500, str(exc))


def _error(status: int, message: str) -> Response:
    return JSONResponse({"error": message}, status_code=status)


class _BasicAuth:
    """Every request must carry the backend's login as HTTP basic auth (compared in constant time)."""

    def __init__(self, app: ASGIApp, login: BackendLogin) -> None:
        self.app = app
        self.expected = (login.username.encode(), login.password.encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self._allowed(Headers(scope=scope).get("authorization", "")):
            response = JSONResponse({"error": "This model backend needs its login (HTTP basic auth); `workbench push` "
                                     "gives it to Label Studio."}, status_code=401,
                                    headers={"WWW-Authenticate": 'Basic realm="workbench model backend"'})  # fmt: skip
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _allowed(self, header: str) -> bool:
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, sep, password = base64.b64decode(encoded.strip(), validate=True).partition(b":")
        except (binascii.Error, ValueError):
            return False
        same_user = hmac.compare_digest(user, self.expected[0])
        same_password = hmac.compare_digest(password, self.expected[1])
        return bool(sep) and same_user and same_password


class _RequestLog:
    """One line per request: method, path, status, milliseconds (no body, no header, no query)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began, status = time.perf_counter(), [0]

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            log.info("%s %s %d %.1f ms", scope["method"], scope["path"], status[0],
                     (time.perf_counter() - began) * 1000)  # fmt: skip
