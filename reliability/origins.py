"""Whose requests a local control API answers: its own Host names and its own origin only.

Three HTTP servers of this project steer real systems: the Locust web UI (start and stop tests),
the reference target's admin API (inject HTTP faults) and the chaos proxy's API (create proxies
and toxics). A browser on any page can send them requests: a cross-site form POST, or a
DNS-rebinding page whose own domain is re-pointed at 127.0.0.1 (then the browser thinks it is
same-origin, but the ``Host`` header still names the hostile domain). :class:`OriginPolicy` is
the one rule set all three apply:

* ``host_problem``: the ``Host`` header must be one of the server's own names: for a loopback bind
  ``localhost``, ``127.0.0.1`` and ``::1``; for a wildcard bind this machine's host names and
  interface addresses (and the loopback names); for any other address that address; plus the
  names the operator adds (``--web-origin``, ``--allowed-host``);
* ``origin_problem``: a state-changing request carrying ``Origin`` (or ``Referer``) must come from
  the server's own origin or an added one, and ``Sec-Fetch-Site``, when sent, must be
  ``same-origin``. Requests with none of these headers do not come from a browser acting for
  another site (curl, scripts, fault drivers) and pass.

Pure (standard library and psutil); the servers adapt it to Flask and aiohttp. Example::

    policy = OriginPolicy("127.0.0.1")
    policy.host_problem("evil.example:8089")   # "unknown Host 'evil.example:8089' ..."
    policy.origin_problem("http://evil.example", None, "cross-site", own=("http", "127.0.0.1", 8089))
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
WILDCARD_BINDS = frozenset({"", "*", "0.0.0.0", "::"})
Origin = tuple[str, str, int]  # scheme, host (lower case, no brackets), port


def is_loopback(host: str | None) -> bool:
    """True for ``localhost`` and loopback addresses; False for a wildcard bind or any other name."""
    name = (host or "").strip("[]").lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


def parse_origin(value: str | None) -> Origin | None:
    """``scheme://host[:port]`` (a Referer's path is ignored) as a comparable tuple, or None."""
    if not value or value == "null":
        return None
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return parts.scheme, parts.hostname.lower().rstrip("."), port or default_port(parts.scheme)


def split_host(header: str) -> tuple[str, int | None] | None:
    """A ``Host`` header as (lower-case name, port or None); None when it does not parse."""
    try:
        parts = urlsplit(f"//{header.strip()}")
        return (parts.hostname or "").lower().rstrip("."), parts.port
    except ValueError:
        return None


def machine_names() -> set[str]:
    """This machine's host names and interface addresses (what a wildcard bind answers on)."""
    import psutil

    names = {socket.gethostname().lower(), socket.getfqdn().lower()}
    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            if address.family in (socket.AF_INET, socket.AF_INET6):
                names.add(address.address.split("%", 1)[0].lower())
    return names


def own_hostnames(bind: str | None, extra: Iterable[str] = (),
                  names: Callable[[], set[str]] = machine_names) -> frozenset[str]:
    """The names a client may use to reach a server bound to ``bind`` (plus ``extra``)."""
    bind = (bind or "").strip("[]").lower()
    if bind in WILDCARD_BINDS:
        found = {*LOOPBACK_NAMES, *names()}
    elif is_loopback(bind):
        found = {*LOOPBACK_NAMES, bind}
    else:
        found = {bind}
    return frozenset(found | {e.strip("[]").lower().rstrip(".") for e in extra})


def parse_origins(values: Iterable[str] | str | None, option: str = "--web-origin") -> list[Origin]:
    """Origins given on the command line (comma-separated, repeatable); a bad one is an error
    naming it."""
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    origins = []
    for value in (v.strip() for item in values for v in item.split(",")):
        if not value:
            continue
        origin = parse_origin(value)
        if origin is None:
            raise ValueError(f"{option}: {value!r} is not an origin like https://locust.example.com:8443")
        origins.append(origin)
    return origins


class OriginPolicy:
    """The Host and Origin rules of the module docstring for one server.

    ``bind`` is the address it listens on; ``extra_hosts`` names it may also be reached by;
    ``extra_origins`` other origins whose pages may drive it (their hosts count as own names).
    """

    def __init__(self, bind: str | None, *, extra_hosts: Iterable[str] = (), extra_origins: Iterable[Origin] = (),
                 scheme: str = "http", names: Callable[[], set[str]] = machine_names) -> None:
        self.scheme = scheme
        self.extra_origins = frozenset(extra_origins)
        self.hostnames = own_hostnames(bind, [*extra_hosts, *(o[1] for o in self.extra_origins)], names)

    def host_problem(self, header: str | None) -> str | None:
        """Why this ``Host`` header is refused (None: it names this server, or there is none)."""
        if header is None:
            return None  # HTTP/1.0 without Host: not a browser
        host = split_host(header)
        if host is None or host[0] not in self.hostnames:
            shown = ", ".join(sorted(self.hostnames)[:6])
            return f"unknown Host {header[:100]!r} (this server answers {shown})"
        return None

    def own_origin(self, host_header: str | None) -> Origin | None:
        """The request's own origin: our scheme and its (checked) Host."""
        host = split_host(host_header or "")
        if host is None or not host[0]:
            return None
        return self.scheme, host[0], host[1] or default_port(self.scheme)

    def is_own(self, origin: Origin | None, host_header: str | None) -> bool:
        return origin is not None and (origin in self.extra_origins or origin == self.own_origin(host_header))

    def origin_problem(self, origin: str | None, referer: str | None, fetch_site: str | None,
                       host_header: str | None) -> str | None:
        """Why a state-changing request is refused (None: same origin, or not from a browser)."""
        raw = origin if origin is not None else referer
        if raw is None:
            if fetch_site in (None, "same-origin"):
                return None
            return f"Sec-Fetch-Site {fetch_site!r} without Origin"
        parsed = parse_origin(raw)
        if parsed is not None and parsed in self.extra_origins:
            return None
        if not self.is_own(parsed, host_header):
            return f"cross-origin request from {raw[:100]!r}"
        if fetch_site not in (None, "same-origin"):
            return f"Sec-Fetch-Site {fetch_site!r}"
        return None


def is_json_content_type(value: str | None) -> bool:
    """``application/json`` (parameters such as ``charset`` allowed)."""
    return (value or "").split(";", 1)[0].strip().lower() == "application/json"
