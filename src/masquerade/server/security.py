"""Who may use ``masquerade serve``: the access token, the Host and Origin checks, CSRF, the headers.

* **Access token.** Every request needs it (the page, the API, its files): as ``Authorization: Bearer
  TOKEN``, or as the cookie the page gets when it is opened once as ``/?token=TOKEN`` (``HttpOnly``,
  ``SameSite=Strict``). It is made with :mod:`secrets` on the first start and kept, readable by its
  owner only, in the data folder (:data:`TOKEN_FILE`); ``serve --token`` or :data:`TOKEN_ENV` set
  another. Tokens are compared in constant time. A server without a token (``serve --no-token``) is
  allowed only on a loopback address.
* **Host.** The ``Host`` header must name this server: an IP address, ``localhost``, the address it
  listens on, or a name given with ``--allowed-host`` (a reverse proxy's). A web page cannot point one
  of its own names at this machine (DNS rebinding) and reach it.
* **Origin.** A request that carries an ``Origin`` of another site than its ``Host`` (a page of
  another site or of another port on this machine) is refused, whatever it is; so is one from an opaque
  origin (``Origin: null``).
* **CSRF.** A state-changing request (not GET or HEAD) authenticated by the cookie alone must also show
  that it comes from the page: a same-origin ``Origin`` or ``Referer``, or the header
  :data:`PAGE_HEADER` (which a foreign page cannot send without a CORS preflight, which is never
  granted). A request with the token in ``Authorization`` needs no more: a browser never adds it.
* **Headers** on every answer: ``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY``,
  ``Referrer-Policy: no-referrer``, ``Cross-Origin-Resource-Policy`` and ``-Opener-Policy:
  same-origin``, ``Cache-Control: no-store``, and a ``Content-Security-Policy`` (the page sets its own,
  with a nonce for its one script and style sheet, see :func:`page_csp`).

Refusals are one-line JSON errors: 401 (no or a wrong token, with ``WWW-Authenticate: Bearer``) and 403
(Host, Origin, CSRF).
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import json
import logging
import os
import re
import secrets
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ..errors import InputError

log = logging.getLogger(__name__)

TOKEN_ENV = "MASQUERADE_TOKEN"
TOKEN_FILE = "access-token"  # in the data folder, mode 0600
TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9._~-]{16,256}$")
TOKEN_RULE = "16 to 256 letters, digits or - . _ ~"
PAGE_HEADER = "x-requested-with"  # sent by the page with every request (any value)
COOKIE_MAX_AGE = 30 * 24 * 3600
LOOPBACK_NAMES = ("localhost",)
HOST_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


# -- the token --------------------------------------------------------------------------------------


def new_token() -> str:
    return secrets.token_urlsafe(32)


def check_token(token: str, what: str = "the access token") -> str:
    """``token`` if it is usable (in a URL, a header and a cookie as it is), else a one-line
    :class:`InputError`."""
    if not TOKEN_PATTERN.match(token):
        raise InputError(f"{what}: use {TOKEN_RULE}")
    return token


def load_or_create_token(data: Path) -> tuple[str, bool]:
    """The access token kept in ``data/access-token`` and whether it was made just now (the first
    start): a new one is written atomically, readable by its owner only; an existing file readable by
    others is made private (with a warning)."""
    path = data / TOKEN_FILE
    try:
        data.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{data}: cannot create the data folder ({exc.strerror or exc})") from None
    for _ in range(2):
        try:
            with open(path, encoding="ascii", errors="replace") as fh:
                mode = os.fstat(fh.fileno()).st_mode
                text = fh.read(1024).strip()
        except FileNotFoundError:
            token = new_token()
            try:
                made = _create_private(path, token + "\n")
            except OSError as exc:
                raise InputError(f"{path}: cannot create the access token ({exc.strerror or exc})") from None
            if made:
                return token, True
            continue  # another process made it meanwhile: read that one
        except OSError as exc:
            raise InputError(f"{path}: cannot read the access token ({exc.strerror or exc})") from None
        if mode & 0o077:
            try:
                os.chmod(path, 0o600)
                log.warning("%s was readable by others; made private to its owner (mode 0600)", path)
            except OSError as exc:
                log.warning("%s is readable by others and cannot be made private (%s)", path, exc)
        if not TOKEN_PATTERN.match(text):
            raise InputError(f"{path}: not an access token ({TOKEN_RULE}); delete it to make a new one")
        return text, False
    raise InputError(f"{path}: cannot create the access token")


def _create_private(path: Path, text: str) -> bool:
    """Write ``path`` (mode 0600) unless it exists: filled under a temporary name, then linked into
    place, so no reader ever sees it half written; False when it exists already."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
    try:
        with open(fd, "w", encoding="ascii") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        except OSError:  # a file system without hard links: a rename, if it is still missing
            if path.exists():
                return False
            os.replace(tmp, path)
        return True
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def same_token(given: str | None, token: str) -> bool:
    return given is not None and secrets.compare_digest(given.encode("utf-8", "replace"), token.encode())


# -- hosts and origins ------------------------------------------------------------------------------


def is_loopback(host: str) -> bool:
    name = host.strip("[]").lower()
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def check_host_name(name: str) -> str:
    """A name for ``--allowed-host`` (lower case, without a final dot), or a one-line InputError."""
    text = name.strip().lower().rstrip(".")
    with contextlib.suppress(ValueError):
        return str(ipaddress.ip_address(text.strip("[]")))
    if not HOST_NAME.match(text) or len(text) > 253:
        raise InputError(f"--allowed-host {name!r}: give a host name only (no scheme, port or path)")
    return text


def _split_host(value: str) -> tuple[str, int | None] | None:
    """(name, port) of a ``Host`` header or an origin's host part; None when malformed."""
    try:
        parts = urlsplit("//" + value)
        name, port = parts.hostname, parts.port
    except ValueError:
        return None
    if not name or parts.path or parts.query or parts.fragment or parts.username is not None:
        return None
    return name.rstrip("."), port


def _origin_of(url: str) -> tuple[str, str, int | None] | None:
    """(scheme, name, port) of an Origin or Referer value; None for ``null`` or anything malformed."""
    try:
        parts = urlsplit(url)
        name, port = parts.hostname, parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not name:
        return None
    return parts.scheme, name.rstrip("."), port


def _same_origin(url: str, host: tuple[str, int | None]) -> bool:
    """Whether the page at ``url`` (an Origin or a Referer) belongs to the site the request was sent to
    (its ``Host``: name and port; a port left out is the scheme's default)."""
    origin = _origin_of(url)
    if origin is None:
        return False
    scheme, name, port = origin
    default = 443 if scheme == "https" else 80
    return name == host[0] and (port or default) == (host[1] or default)


# -- the middleware ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class AccessPolicy:
    token: str | None  # None: no token needed (a loopback server started with --no-token)
    host: str = "127.0.0.1"  # the address listened on
    allowed_hosts: tuple[str, ...] = ()  # more names the Host header may carry

    def host_allowed(self, name: str) -> bool:
        name = name.lower()
        with contextlib.suppress(ValueError):
            ipaddress.ip_address(name)
            return True  # an address cannot be rebound by a web page's DNS
        return name in LOOPBACK_NAMES or name == self.host.strip("[]").lower() or name in self.allowed_hosts

    @property
    def cookie(self) -> str:
        """The cookie's name: one per token, so servers on other ports of the same host keep theirs."""
        assert self.token is not None
        return "masquerade-" + hashlib.sha256(self.token.encode()).hexdigest()[:12]


def error_response(
    status: int, detail: str, headers: Iterable[tuple[bytes, bytes]] = ()
) -> tuple[Message, Message]:
    body = json.dumps({"detail": detail}).encode()
    start = {
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),  # its body, if any, is not read
            *headers,
        ],
    }
    return start, {"type": "http.response.body", "body": body, "more_body": False}


API_CSP = b"default-src 'none'; frame-ancestors 'none'"
SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cache-control", b"no-store"),
)


def page_csp(nonce: str) -> str:
    """The page's policy: its own script and style sheet (by nonce), pictures and videos from this
    server or the browser's own files (previews), requests to this server only, nothing else."""
    return (
        f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
        "img-src 'self' blob:; media-src 'self' blob:; connect-src 'self'; base-uri 'none'; "
        "form-action 'none'; frame-ancestors 'none'"
    )


class Guard:
    """ASGI middleware: refuses what :class:`AccessPolicy` does not allow (see the module docstring)
    and adds the security headers to every answer."""

    def __init__(self, app: ASGIApp, policy: AccessPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: dict[str, str] = {}
        for k, v in scope.get("headers", []):
            key = k.decode("latin-1").lower()
            headers.setdefault(key, v.decode("latin-1"))
        refusal, set_cookie = self._check(scope, headers)

        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                have = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in SECURITY_HEADERS if k not in have]
                if b"content-security-policy" not in have:
                    extra.append((b"content-security-policy", API_CSP))
                if set_cookie is not None:
                    extra.append((b"set-cookie", set_cookie))
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        if refusal is not None:
            status, detail = refusal
            more = [(b"www-authenticate", b"Bearer")] if status == 401 else []
            for message in error_response(status, detail, more):
                await send_secured(message)
            return
        await self.app(scope, receive, send_secured)

    def _check(self, scope: Scope, headers: dict[str, str]) -> tuple[tuple[int, str] | None, bytes | None]:
        """(status and reason of a refusal or None, the Set-Cookie value to add or None)."""
        p = self.policy
        host = _split_host(headers.get("host", ""))
        if host is None:
            return (403, "missing or malformed Host header"), None
        if not p.host_allowed(host[0]):
            return (
                403,
                f"host {host[0][:100]!r} is not allowed; add it with masquerade serve --allowed-host",
            ), None
        origin = headers.get("origin")
        if origin is not None and not _same_origin(origin, host):
            return (403, "cross-origin requests are refused"), None
        if p.token is None:
            return None, None
        method = scope.get("method", "GET")
        auth = headers.get("authorization", "")
        scheme, _, credential = auth.partition(" ")
        if auth:
            if scheme.lower() != "bearer" or not same_token(credential.strip(), p.token):
                return (401, "wrong access token"), None
            return None, None
        if same_token(_cookie(headers.get("cookie", ""), p.cookie), p.token):
            if method not in ("GET", "HEAD") and not (
                origin is not None or PAGE_HEADER in headers or _same_origin(headers.get("referer", ""), host)
            ):
                return (403, "cross-site request refused (send the X-Requested-With header)"), None
            return None, None
        if scope.get("path") == "/" and method in ("GET", "HEAD"):
            given = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token")
            if given:
                if same_token(given[-1], p.token):
                    return None, self._cookie_header(scope)
                return (401, "wrong access token"), None
            return (
                401,
                "this server needs its access token: open the address with ?token=… that masquerade "
                f"serve printed when it made the token (kept in the data folder's {TOKEN_FILE} file)",
            ), None
        return (401, "missing access token (send Authorization: Bearer TOKEN)"), None

    def _cookie_header(self, scope: Scope) -> bytes:
        assert self.policy.token is not None
        secure = "; Secure" if scope.get("scheme") == "https" else ""
        return (
            f"{self.policy.cookie}={self.policy.token}; Path=/; Max-Age={COOKIE_MAX_AGE}; HttpOnly; "
            f"SameSite=Strict{secure}"
        ).encode()


def _cookie(header: str, name: str) -> str | None:
    """The value of cookie ``name`` in a ``Cookie`` header (the last one of that name)."""
    found = None
    for item in header.split(";"):
        key, sep, value = item.strip().partition("=")
        if sep and key == name:
            found = value.strip().strip('"')
    return found
