"""Secret masking: the one function every output goes through (record, reports, logs, web UI,
error messages, ``--dry-run``, fault and probe output).

:func:`mask` replaces with ``***``:

* the password of a URL's userinfo, ``postgresql://app:***@db/items``, also when the password
  holds an unencoded ``#``, ``@`` or ``/`` (the last ``@`` of the word ends the userinfo);
* secret query parameters, ``?password=***&sslmode=require`` (``password``, ``pass``, ``pwd``,
  ``token``, ``secret``, ``api_key`` ... see :data:`SECRET_PARAMS`);
* libpq ``key=value`` passwords, ``host=db password=*** dbname=x`` (quoted values too);
* every known secret value given in ``secrets`` (and its percent-encoded form): the values a
  scenario took from ``${ENV}`` references whose name looks secret, and the passwords inside
  interpolated URLs and DSNs (see :func:`secrets_of_env_value`).

Example::

    >>> mask("connect postgresql://app:pa#ss@db:5432/items?sslmode=require failed")
    'connect postgresql://app:***@db:5432/items?sslmode=require failed'
    >>> mask("host=db user=app password='a b' dbname=items")
    'host=db user=app password=*** dbname=items'
    >>> mask("token leaked: s3cr3t-value", secrets=("s3cr3t-value",))
    'token leaked: ***'

:func:`mask_data` masks every string (and the value of every secret-named key) of JSON-like
data; :class:`MaskingFilter` is a ``logging.Filter`` that masks log records. No state lives in
this module: the caller holds the secrets (a scenario's :attr:`~reliability.config.ScenarioSpec.secrets`).
"""

from __future__ import annotations

import logging
import re
import traceback
from collections.abc import Iterable, Mapping, Sequence
from typing import overload
from urllib.parse import quote, unquote

from reliability.jsontypes import JsonData, JsonObject, JsonValue
from reliability.textsafe import neutralize, shorten_line

MASK = "***"
SECRET_PARAMS = (
    "password", "pass", "passwd", "pwd", "sslpassword", "secret", "client_secret", "token", "access_token",
    "refresh_token", "auth", "auth_token", "api_key", "apikey", "api-key", "key", "signature", "sig",
)
MAX_LOG_CHARS = 600  # a log line longer than this (a 10 kB request name in it) is cut in the middle
MIN_TRACKED_LEN = 4  # a tracked value shorter than this is masked only where its syntax says so
_PARAMS = "|".join(re.escape(p) for p in sorted(SECRET_PARAMS, key=len, reverse=True))
# scheme://user:password@ : the password runs to the last "@" of the word (it may hold "#", "/", "@")
_USERINFO = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:/?#@'\"<>]*:)(?P<pw>[^\s'\"<>]*)(?=@)")
# ?password=... / &token=... : the value runs to the next "&", space or quote (it may hold "#")
_QUERY = re.compile(rf"(?P<head>[?&;](?:{_PARAMS})=)(?P<pw>[^&\s'\"<>]*)", re.IGNORECASE)
# libpq key=value: password=secret or password='quoted \' secret'
_KEYVALUE = re.compile(r"(?P<head>(?:^|(?<=[\s,(]))(?:password|sslpassword)\s*=\s*)(?P<pw>'(?:[^'\\]|\\.)*'|[^\s'\"]+)",
                       re.IGNORECASE)
# names of environment variables (or record keys) whose whole value is a secret
_SECRET_NAME = re.compile(r"password|passwd|secret|token|credential|api_?key|private_?key|access_?key", re.IGNORECASE)
_SECRET_PART = frozenset({"pass", "pw", "pwd", "key", "auth", "cookie"})


def is_secret_name(name: str) -> bool:
    """True for a variable or key name that says its value is a secret (``DB_PASSWORD``, ``api_token``)."""
    if _SECRET_NAME.search(name):
        return True
    return any(part in _SECRET_PART for part in re.split(r"[_\-.]+", name.lower()))


def _masked(match: re.Match[str]) -> str:
    return match.group("head") + MASK if match.group("pw") else match.group(0)


def mask(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every password-shaped part and every value of ``secrets`` replaced by ``***``."""
    if not isinstance(text, str):  # defensive: callers pass str, a stray value must not crash a log line
        text = str(text)
    for secret in _ordered(secrets):
        if secret in text:
            text = text.replace(secret, MASK)
        encoded = quote(secret, safe="")
        if encoded != secret and encoded in text:
            text = text.replace(encoded, MASK)
    if "://" in text:
        text = _USERINFO.sub(_masked, text)
    if "=" in text:
        text = _QUERY.sub(_masked, text)
        text = _KEYVALUE.sub(_masked, text)
    return text


def _ordered(secrets: Iterable[str]) -> list[str]:
    # longest first, so a DSN given whole is replaced before the password inside it
    return sorted({s for s in secrets if s}, key=len, reverse=True)


@overload
def mask_data(data: Mapping[str, JsonData], secrets: Iterable[str] = ()) -> JsonObject: ...


@overload
def mask_data(data: JsonData, secrets: Iterable[str] = ()) -> JsonValue: ...


def mask_data(data: JsonData, secrets: Iterable[str] = ()) -> JsonValue:
    """A copy of JSON-like ``data`` with every string masked (keys too) and the value of every
    secret-named key (``password``, ``api_token``) replaced by ``***`` when it is a string."""
    ordered = tuple(_ordered(secrets))
    return _mask_node(data, ordered)


def _mask_node(node: JsonData, secrets: tuple[str, ...]) -> JsonValue:
    if isinstance(node, str):
        return mask(node, secrets)
    if isinstance(node, Mapping):
        out: JsonObject = {}
        for key, value in node.items():
            name = mask(key, secrets) if isinstance(key, str) else key  # a non-string key is kept
            if isinstance(key, str) and isinstance(value, str) and value and _is_secret_key(key):
                out[name] = MASK
            else:
                out[name] = _mask_node(value, secrets)
        return out
    if isinstance(node, Sequence):  # a list or tuple (a string is handled above)
        return [_mask_node(v, secrets) for v in node]
    return node


def _is_secret_key(key: str) -> bool:
    # a record or state key holding a secret; not a measure named after one ("max_tokens", "token_ms")
    return is_secret_name(key) and not key.lower().endswith(("_s", "_ms", "_pct", "_ratio", "_count", "tokens"))


def passwords_in(value: str | None) -> tuple[str, ...]:
    """The passwords written inside ``value``: URL userinfo, secret query parameters, libpq
    ``password=`` (quoted values unquoted), each also percent-decoded when it differs.

    >>> passwords_in("postgresql://app:pa%23ss@db/items?sslpassword=k3y")
    ('pa%23ss', 'pa#ss', 'k3y')
    """
    if not value:
        return ()
    found: list[str] = []
    for pattern in (_USERINFO, _QUERY, _KEYVALUE):
        for match in pattern.finditer(value):
            pw = match.group("pw")
            if pw.startswith("'") and pw.endswith("'") and len(pw) >= 2:
                pw = re.sub(r"\\(.)", r"\1", pw[1:-1])
            if pw:
                found.append(pw)
                decoded = unquote(pw)
                if decoded != pw:
                    found.append(decoded)
    return tuple(dict.fromkeys(found))


def secrets_of_env_value(name: str, value: str) -> tuple[str, ...]:
    """What to mask of an environment value a file interpolated: the passwords inside it, and the
    whole value when the variable's name says it is a secret (``DB_PASSWORD``, ``API_TOKEN``)."""
    found = list(passwords_in(value))
    if is_secret_name(name) and value.strip():
        found.append(value)
    return tuple(s for s in found if len(s) >= MIN_TRACKED_LEN)


class MaskingFilter(logging.Filter):
    """A ``logging.Filter`` that masks every record's message, arguments and traceback.

    Attach it to handlers (a filter on a handler sees records propagated from every logger)::

        masker = MaskingFilter()
        for handler in logging.getLogger().handlers:
            handler.addFilter(masker)
        masker.secrets = scenario.secrets      # when the scenario is known
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__("reliability.masking")
        self.secrets: tuple[str, ...] = tuple(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: keep Locust's own handling of it
            return True
        # one line each, with no control or bidi character a terminal would obey
        record.msg = shorten_line(neutralize(mask(message, self.secrets)), MAX_LOG_CHARS)
        record.args = None
        if record.exc_info and record.exc_info[0] is not None:
            record.exc_text = mask("".join(traceback.format_exception(*record.exc_info)).rstrip("\n"), self.secrets)
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = mask(record.exc_text, self.secrets)
        if record.stack_info:
            record.stack_info = mask(record.stack_info, self.secrets)
        return True


def install_log_masking(logger: logging.Logger | None = None, secrets: Iterable[str] = (),
                        masker: MaskingFilter | None = None) -> MaskingFilter:
    """Attach one :class:`MaskingFilter` (``masker``, else a new one) to every handler of
    ``logger`` (the root by default) and return it; calling it again returns the filter already
    attached (its secrets updated)."""
    target = logger or logging.getLogger()
    existing = next((f for h in target.handlers for f in h.filters if isinstance(f, MaskingFilter)), None)
    masker = existing if existing is not None else masker if masker is not None else MaskingFilter()
    masker.secrets = tuple(dict.fromkeys((*masker.secrets, *secrets)))
    for handler in target.handlers:
        if masker not in handler.filters:
            handler.addFilter(masker)
    return masker
