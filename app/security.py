"""What every response of the dashboard's web server is protected by.

- **Host check** (against DNS rebinding: a web page whose host name an attacker points
  at 127.0.0.1 would otherwise read the dashboard): a request whose ``Host`` header is
  not an address the server is bound to gets 400. Bound to a loopback address, the
  loopback names (``localhost``, ``127.0.0.1``, ``[::1]``) are allowed; bound to every
  address (``0.0.0.0``), this machine's names and any IP address are (a rebinding
  attack needs a host name); ``fspace serve --allow-host NAME`` adds names. A request
  other than GET sent by a page of another web site (its ``Origin`` is not one of these
  hosts) gets 403.
- **Security headers** on every response: the page may not be framed
  (``X-Frame-Options: DENY``, ``frame-ancestors 'none'``), a Content-Security-Policy
  that allows only the server's own scripts (and Dash's inline ones, by hash),
  ``X-Content-Type-Options: nosniff`` and ``Referrer-Policy: no-referrer``.
- **No HTTP 500 with a traceback**: an error the callbacks' own handlers did not catch
  becomes a plain 400 (a malformed callback request) or 500 without details.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger("fspace.app")

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
WILDCARDS = frozenset({"", "0.0.0.0", "::"})
DISPATCH = "/_dash-update-component"
# plotly.js draws WebGL traces with regl, which compiles its drawing code at run time.
SCRIPT_EVAL = "'unsafe-eval'"
HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


def _plain(host: str) -> str:
    return host.strip().strip("[]").lower().rstrip(".")


def is_loopback(host: str) -> bool:
    """Whether ``host`` is only reachable from this machine."""
    host = _plain(host)
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class HostPolicy:
    """Which ``Host`` headers a server accepts: ``names`` on ``port`` (None: any port);
    with ``any_ip`` also every IP address."""

    names: frozenset[str]
    port: int | None = None
    any_ip: bool = False

    def allows(self, header: str | None) -> bool:
        """Whether a request with ``Host: header`` is for this server."""
        parsed = split_host(header or "")
        if parsed is None:
            return False
        host, port = parsed
        if self.port is not None and (port or 80) != self.port:
            return False
        return host in self.names or (self.any_ip and _is_ip(host))


def split_host(header: str) -> tuple[str, int | None] | None:
    """``(host, port)`` of a Host header (port None if absent); None if malformed."""
    header = header.strip()
    if header.startswith("["):  # [v6]:port
        host, sep, rest = header[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            return None
        port_text = rest[1:] if rest else ""
    elif header.count(":") == 1:
        host, _, port_text = header.partition(":")
    else:
        host, port_text = header, ""
    if port_text and not (port_text.isdigit() and 0 < int(port_text) < 65536):
        return None
    host = _plain(host)
    if not host:
        return None
    return host, int(port_text) if port_text else None


def host_policy(
    host: str | None = None, port: int | None = None, extra: Iterable[str] = ()
) -> HostPolicy:
    """The Host headers a server bound to ``host:port`` answers, plus the names ``extra``.

    ``host=None`` (an app not started by :func:`fspace.app.serve`): the loopback names
    on any port.
    """
    names = {_plain(n) for n in extra if _plain(n)}
    bound = _plain(host) if host is not None else None
    if bound is None or is_loopback(bound):
        names |= LOOPBACK_NAMES | ({bound} if bound else set())
        return HostPolicy(frozenset(names), port)
    if bound in WILDCARDS:
        names |= LOOPBACK_NAMES | {_plain(socket.gethostname()), _plain(socket.getfqdn())}
        return HostPolicy(frozenset(names), port, any_ip=True)
    return HostPolicy(frozenset(names | {bound}), port)


def content_security_policy(inline_hashes: Iterable[str]) -> str:
    """The CSP of every page: own scripts, and inline ones only by their hashes."""
    scripts = " ".join(["'self'", *inline_hashes, SCRIPT_EVAL])
    return "; ".join(
        [
            "default-src 'self'",
            f"script-src {scripts}",
            "style-src 'self' 'unsafe-inline'",  # plotly.js and React set style attributes
            "img-src 'self' data: blob:",
            "font-src 'self' data:",
            "connect-src 'self'",
            "worker-src 'self' blob:",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


def protect(app: Any, policy: HostPolicy) -> None:
    """Install the host check, security headers and error handler on the Dash ``app``.

    The policy is kept in ``app.server.config["FSPACE_HOSTS"]``.
    """
    from flask import abort, request

    server = app.server
    server.config["FSPACE_HOSTS"] = policy
    csp: list[str] = []  # computed at the first response, once every callback is attached

    @server.before_request
    def check_host() -> None:
        hosts = server.config["FSPACE_HOSTS"]
        if not hosts.allows(request.host):
            log.warning("refused a request for host %r", request.host[:100])
            abort(
                400, description="unknown Host header; open the dashboard by the address it prints"
            )
        origin = request.headers.get("Origin")
        if request.method != "GET" and origin and not hosts.allows(urlsplit(origin).netloc):
            log.warning("refused a %s from origin %r", request.method, origin[:100])
            abort(403, description="requests from other web sites are refused")

    @server.after_request
    def add_headers(response):
        if not csp:
            csp.append(content_security_policy(app.csp_hashes()))
        response.headers.update(HEADERS)
        response.headers["Content-Security-Policy"] = csp[0]
        return response

    server.register_error_handler(Exception, _error_response)


def _error_response(err: Exception):
    from flask import request
    from werkzeug.exceptions import HTTPException

    if isinstance(err, HTTPException):
        return err
    if request.path.endswith(DISPATCH):
        log.warning("refused a malformed callback request: %r", err)
        return "malformed callback request", 400, {"Content-Type": "text/plain"}
    log.error("request %s failed", request.path, exc_info=err)
    return (
        "internal error; the details are in the server's log",
        500,
        {"Content-Type": "text/plain"},
    )
