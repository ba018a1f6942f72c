"""Accounts on a Label Studio server, with no UI: log in through the form, mint personal access tokens, sign
annotators up through the invite link.

These are the browser's form flows (a csrftoken cookie, then a form post with a Referer; success is a 302), so
they use a cookie-keeping HTTP client of their own, built and error-mapped by `transport` like the SDK adapter's.
Secrets never appear in a message, an exception or a quoted page.
"""

from __future__ import annotations

import base64
import html
import json
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

import httpx

from workbench.errors import AuthError, LoginRefusedError, ServerError
from workbench.labelstudio.client import LabelStudio
from workbench.labelstudio.transport import calling, checked_url, expect, http_client, redact

FORM_TIMEOUT = 30.0


@dataclass(frozen=True)
class AnnotatorLogin:
    """An annotator account made through the invite link; the password is shown once by the caller."""

    email: str
    password: str = field(repr=False)
    user_id: int = 0

    def __repr__(self) -> str:
        return f"AnnotatorLogin(email={self.email!r}, password='***', user_id={self.user_id})"


def mint_token(url: str, email: str, password: str, *, revoke_existing: bool = True) -> str:
    """Log in through the form and create a personal access token, the way the UI does it, with no UI.

    Label Studio allows one live personal token per user: with `revoke_existing` the old one is revoked first,
    otherwise an existing token is an AuthError.
    """
    url = checked_url(url)
    with _form_client(url) as http:
        _log_in(http, url, email, password)
        response = _post_token(http, url)
        if response.status_code == 409 and revoke_existing:
            _revoke_tokens(http, url)
            response = _post_token(http, url)
        if response.status_code == 409:
            raise AuthError(
                f"The Label Studio user {email} already has a personal access token, and only one is allowed. "
                "Revoke it on the Account & Settings page, or mint with revoke_existing=True."
            )
        expect(response, 201, url, f"create a personal access token for {email}", quote=False)
        token = response.json().get("token")
        if not isinstance(token, str) or not token:
            raise ServerError(
                f"Label Studio at {url} answered the token request for {email} without a token. Check that "
                "the server is version 1.23 or later (`workbench server status`)."
            )
        return token


def whoami(url: str, api_key: str) -> dict[str, Any]:
    """The user an API key belongs to (`id`, `email`); AuthError when the server rejects the key."""
    with LabelStudio(url, api_key) as client:
        return client.current_user()


def key_works(url: str, api_key: str) -> bool:
    """Whether the server accepts `api_key`; a revoked or foreign key is an answer here, not an error."""
    try:
        whoami(url, api_key)
    except AuthError:
        return False
    return True


def create_annotator(url: str, api_key: str, email: str, *, password: str | None = None) -> AnnotatorLogin:
    """Make an account that can log in, through the organisation's invite link (the users API makes ones that
    cannot), and reset the link afterwards so the one used (logged by the server) is dead."""
    password = password or secrets.token_urlsafe(18)
    with LabelStudio(url, api_key) as client:
        invite = client.invite_token()
        try:
            return _sign_up(client.url, invite, email, password)
        finally:
            client.reset_invite()


def jwt_claims(token: str) -> dict[str, Any] | None:
    """Unverified JWT claims (to tell a personal access token from a legacy one), or None."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
        claims = json.loads(payload)
    except (ValueError, json.JSONDecodeError):
        return None
    return claims if isinstance(claims, dict) else None


# ---- the form flows ------------------------------------------------------------------------------------------


def _form_client(url: str) -> httpx.Client:
    """A browser-like client: it keeps cookies and sees redirects (a 302 is how a form says yes)."""
    return http_client(url, follow_redirects=False, timeout=FORM_TIMEOUT)


def _request(http: httpx.Client, url: str, method: str, path: str, what: str, **kwargs: Any) -> httpx.Response:
    with calling(url, what):
        return http.request(method, f"{url}{path}", **kwargs)


def _sign_up(url: str, invite: str, email: str, password: str) -> AnnotatorLogin:
    with _form_client(url) as http:
        response = _post_account_form(http, url, f"/user/signup/?token={invite}", email, password)
        if response.status_code != 302:
            problems = _form_errors(response.text, (password, invite)) or f"HTTP {response.status_code}"
            raise ServerError(
                f"Label Studio at {url} refused to sign up {email}: {problems}. Fix the e-mail address or the "
                "password and try again (an account that already exists can simply log in)."
            )
        me = _request(http, url, "GET", "/api/current-user/whoami", f"read the new account {email}")
        expect(me, 200, url, f"read the new account {email}", quote=False)
        return AnnotatorLogin(email=email, password=password, user_id=int(me.json()["id"]))


def _post_account_form(http: httpx.Client, url: str, path: str, email: str, password: str) -> httpx.Response:
    """Submit Label Studio's login or sign-up form like a browser: csrftoken cookie first, Referer set."""
    page = f"{url}{path}"
    opened = _request(http, url, "GET", path, f"open {path.split('?')[0]}")
    expect(opened, 200, url, f"open {path.split('?')[0]}")
    csrf = http.cookies.get("csrftoken")
    if not csrf:
        raise ServerError(f"Label Studio's page {url}{path.split('?')[0]} set no csrftoken cookie. Check that "
                          "the URL points at Label Studio.")
    return _request(
        http, url, "POST", path, f"submit {path.split('?')[0]}",
        data={"email": email, "password": password, "csrfmiddlewaretoken": csrf}, headers={"Referer": page},
    )  # fmt: skip


def _log_in(http: httpx.Client, url: str, email: str, password: str) -> None:
    response = _post_account_form(http, url, "/user/login/", email, password)
    if response.status_code != 302:
        raise LoginRefusedError(
            f"Label Studio at {url} did not accept the login of {email} (HTTP {response.status_code}): wrong "
            "e-mail or password. Check the account, or create it with `workbench annotators add`."
        )


def _csrf_headers(http: httpx.Client, referer: str) -> dict[str, str]:
    """Django rotates the CSRF token at login, so it is read again for every post."""
    return {"X-CSRFToken": str(http.cookies.get("csrftoken") or ""), "Referer": referer}


def _post_token(http: httpx.Client, url: str) -> httpx.Response:
    return _request(http, url, "POST", "/api/token/", "create a personal access token",
                    headers=_csrf_headers(http, f"{url}/user/account"))  # fmt: skip


def _revoke_tokens(http: httpx.Client, url: str) -> None:
    """Blacklist the user's live personal tokens (the list gives them truncated, which is what blacklist takes)."""
    listing = _request(http, url, "GET", "/api/token/", "list personal access tokens")
    expect(listing, 200, url, "list personal access tokens")
    for item in listing.json():
        truncated = item.get("token") if isinstance(item, dict) else None
        if truncated:
            response = _request(http, url, "POST", "/api/token/blacklist/", "revoke an old personal access token",
                                json={"refresh": truncated}, headers=_csrf_headers(http, f"{url}/"))  # fmt: skip
            if response.status_code not in (204, 404):
                expect(response, 204, url, "revoke an old personal access token")


def _form_errors(page: str, hidden: tuple[str, ...]) -> str:
    """The messages of a Django form's error lists, for a refusal the user can act on."""
    blocks = re.findall(r'<ul class="(?:field_errors|errorlist)[^"]*">(.*?)</ul>', page, re.S)
    items = [item for block in blocks for item in re.findall(r"<li>(.*?)</li>", block, re.S)]
    items += re.findall(r'<p class="error">(.*?)</p>', page, re.S)
    messages = (html.unescape(re.sub(r"<[^>]+>", "", item)).strip().rstrip(".") for item in items)
    return redact("; ".join(message for message in messages if message), hidden)
