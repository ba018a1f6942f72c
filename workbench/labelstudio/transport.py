"""How the workbench reaches a Label Studio server over HTTP, and what each failure means to a user.

One HTTP client recipe (timeouts, no proxy for loopback) and one mapping from SDK and HTTP failures to the
workbench's errors, used by the SDK adapter (`client`) and the login-form flows (`accounts`) alike. Messages name
the server and the fix, never a token or a password.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, NoReturn
from urllib.parse import urlsplit

import httpx
from label_studio_sdk.core.api_error import ApiError

from workbench.errors import AuthError, ProjectNotFoundError, ServerError

# Imports and exports of large projects take minutes on a 2-core machine; the SDK's 60 s default is too short.
# Only the bulk calls (task listing, import, export) get this long; a server that accepts a connection and never
# answers must not hold a small call (or the token exchange) for 15 minutes.
REQUEST_TIMEOUT = 900.0
QUICK_TIMEOUT = 60.0
CONNECT_TIMEOUT = 10.0
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
ENV_URL = "LABEL_STUDIO_URL"
ENV_API_KEY = "LABEL_STUDIO_API_KEY"


def checked_url(url: str) -> str:
    """`url` without a trailing slash, if it is an http(s) URL; anything else is a ServerError naming the fix."""
    try:
        parts = urlsplit(url)
        scheme, host = parts.scheme, parts.hostname
    except ValueError:  # e.g. an unclosed IPv6 bracket
        scheme, host = "", None
    if scheme not in ("http", "https") or not host:
        raise ServerError(
            f"The Label Studio URL {url!r} is not an http(s) URL. Set {ENV_URL} to one such as "
            "http://127.0.0.1:8080 (or unset it and run `workbench server start` for the local server)."
        )
    return url.rstrip("/")


def http_client(url: str, *, follow_redirects: bool = True, timeout: float | None = None) -> httpx.Client:
    """An HTTP client for the server at `url` (QUICK_TIMEOUT unless told otherwise): loopback traffic never goes
    through a proxy from the environment."""
    host = urlsplit(checked_url(url)).hostname
    timeout = timeout or QUICK_TIMEOUT
    return httpx.Client(
        timeout=httpx.Timeout(timeout, connect=min(CONNECT_TIMEOUT, timeout)),
        follow_redirects=follow_redirects,
        trust_env=host not in LOOPBACK_HOSTS,
    )


@contextlib.contextmanager
def calling(url: str, what: str, project_id: int | None = None) -> Iterator[None]:
    """Turn SDK and transport failures while trying to do `what` into one-paragraph workbench errors."""
    try:
        yield
    except ApiError as exc:
        refuse(url, exc.status_code, exc.body, what, project_id)
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        raise ServerError(
            f"The Label Studio server at {url} is not reachable ({type(exc).__name__}) while trying "
            f"to {what}. Start the local server with `workbench server start`, or check {ENV_URL} "
            "if you use your own server."
        ) from None
    except httpx.TimeoutException as exc:
        raise ServerError(
            f"The Label Studio server at {url} did not answer in time while trying to {what} "
            f"({type(exc).__name__}). Check that {ENV_URL} points at Label Studio and that it is not "
            "overloaded (`workbench server status`), then run the command again; the workbench reconciles by "
            "task key, so nothing is duplicated."
        ) from None
    except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
        raise ServerError(
            f"The Label Studio URL {url!r} is not usable ({type(exc).__name__}). Set {ENV_URL} to "
            "an http(s) URL such as http://127.0.0.1:8080, or unset it to use the local server."
        ) from None
    except httpx.TransportError as exc:
        raise ServerError(
            f"The connection to the Label Studio server at {url} broke while trying to {what} "
            f"({type(exc).__name__}). Check that the server is running (`workbench server status`) and run "
            "the command again; the workbench reconciles by task key, so nothing is duplicated."
        ) from None
    except ValueError as exc:  # JSON or pydantic parsing: whatever answered is not Label Studio's API
        raise ServerError(
            f"The server at {url} answered something that is not Label Studio's API while trying to "
            f"{what} ({type(exc).__name__}). Check that {ENV_URL} points at a Label Studio server "
            "(version 1.23 or later)."
        ) from None


def expect(response: httpx.Response, code: int, url: str, what: str, *, quote: bool = True) -> None:
    """A response of a login-form flow must have status `code`; any other is a ServerError naming it (never an
    AuthError: no API token is involved). `quote=False` leaves the body out (it may hold a secret)."""
    if response.status_code != code:
        body = " ".join(response.text[:200].split()) if quote else "(not shown)"
        raise ServerError(
            f"Label Studio at {url} answered HTTP {response.status_code} when trying to {what} (expected {code}): "
            f"{body!r}. Check `workbench server status` and the server log."
        )


def refuse(url: str, status: int | None, body: Any, what: str, project_id: int | None = None) -> NoReturn:
    """The error for an API answer with status `status` while trying to do `what`."""
    if status is not None and 200 <= status < 300:
        raise ServerError(
            f"The server at {url} answered, but not like Label Studio's API, while trying to {what} "
            f"(got {short(body, 120)}). Check that {ENV_URL} points at a Label Studio server (version 1.23 or later)."
        )
    if status in (401, 403):
        raise AuthError(
            f"The Label Studio server at {url} rejected the API token while trying to {what} "
            f"(HTTP {status}). The token is wrong, revoked or expired: for the local server run "
            "`workbench server start` to mint a fresh one; for your own server set "
            f"{ENV_API_KEY} to a valid personal access token (Account & Settings -> Personal "
            "Access Token)."
        )
    if status == 404 and project_id is not None:
        raise ProjectNotFoundError(
            f"Label Studio project {project_id} is no longer on the server at {url} (HTTP 404 "
            f"while trying to {what}). If it was deleted on purpose, remove .workbench/project.json "
            "and run `workbench push` to create a new project; otherwise point the workbench back at "
            "the server that holds it."
        )
    raise ServerError(
        f"The Label Studio server at {url} answered HTTP {status} while trying to {what}: "
        f"{short(body)}. Check the server log (.workbench/labelstudio/server.log for the local "
        "server) and run the command again; nothing was written locally."
    )


def redact(text: str, secrets: tuple[str | None, ...]) -> str:
    """`text` with every known secret blanked out."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def short(body: Any, limit: int = 300) -> str:
    text = " ".join(str(body).split())
    return text if len(text) <= limit else text[:limit] + "..."
