"""The chaos proxy's pure parts: HTTP request framing, toxic parsing and updates, addresses."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from reliability.chaosproxy.httpmode import RequestEnd, RequestFramer, RequestStart, error_response
from reliability.chaosproxy.proxy import join_address, split_address
from reliability.chaosproxy.toxics import ApiError, parse_toxic, update_toxic


def _flatten(events: Sequence[object]) -> list[object]:
    """Starts as (method, path), ends as 'end', bytes joined between them."""
    out: list[object] = []
    for event in events:
        if isinstance(event, RequestStart):
            out.append((event.method, event.path))
        elif isinstance(event, RequestEnd):
            out.append("end")
        elif out and isinstance(out[-1], bytes):
            out[-1] += event  # type: ignore[operator]
        else:
            out.append(event)
    return out


def test_two_requests_with_bodies_are_split_byte_by_byte() -> None:
    stream = (b"POST /api/items?x=1 HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello"
              b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n")
    framer = RequestFramer()
    events: list[object] = []
    for i in range(len(stream)):
        events += framer.feed(stream[i:i + 1])
    assert _flatten(events) == [("POST", "/api/items"), b"hello", "end", ("GET", "/health"), "end"]
    assert not framer.passthrough


def test_chunked_bodies_and_trailers_end_where_they_end() -> None:
    framer = RequestFramer()
    body = b"4\r\nWiki\r\n5;ext=1\r\npedia\r\n0\r\nX-Trailer: 1\r\n\r\n"
    events = framer.feed(b"PUT /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + body + b"GET /b HTTP/1.1\r\n\r\n")
    flat = _flatten(events)
    assert flat[0] == ("PUT", "/a") and flat[1] == body and flat[2:] == ["end", ("GET", "/b"), "end"]


def test_keep_alive_and_upgrade_are_read_from_the_head() -> None:
    (start, _end) = RequestFramer().feed(b"GET / HTTP/1.0\r\n\r\n")
    assert isinstance(start, RequestStart) and not start.keep_alive
    (start, _end) = RequestFramer().feed(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
    assert isinstance(start, RequestStart) and not start.keep_alive
    framer = RequestFramer()
    events = framer.feed(b"GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x05frame")
    assert isinstance(events[0], RequestStart) and events[0].upgrade
    assert events[1:] == [RequestEnd(), b"\x81\x05frame"]
    assert framer.passthrough and framer.feed(b"more") == [b"more"]


def test_what_is_not_http_passes_through_untouched() -> None:
    framer = RequestFramer()
    assert framer.feed(b"*1\r\n$4\r\nPING\r\n\r\n") == [b"*1\r\n$4\r\nPING\r\n\r\n"]
    assert framer.passthrough
    framer = RequestFramer()
    assert framer.feed(b"GET / HTTP/1.1\r\nContent-Length: -3\r\n\r\nabc") == \
        [b"GET / HTTP/1.1\r\nContent-Length: -3\r\n\r\nabc"]


def test_error_response_is_a_complete_http_answer() -> None:
    raw = error_response(429, keep_alive=True)
    head, body = raw.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 429 Too Many Requests\r\n")
    assert f"Content-Length: {len(body)}".encode() in head
    assert b"Retry-After: 1" in head and b"Connection: keep-alive" in head
    assert b"Connection: close" in error_response(500, keep_alive=False)


def test_toxics_default_like_toxiproxy_and_carry_our_ttl() -> None:
    toxic = parse_toxic({"type": "latency", "attributes": {"latency": 100}, "ttl_s": 30}, now=100.0)
    assert toxic.to_json(now=110.0) == {
        "name": "latency_downstream", "type": "latency", "stream": "downstream", "toxicity": 1.0,
        "attributes": {"latency": 100, "jitter": 0}, "ttl_s": 30.0, "expires_in_s": 20.0,
    }
    plain = parse_toxic({"type": "timeout", "stream": "upstream", "toxicity": 0.5}, now=0.0)
    assert plain.to_json(0.0) == {"name": "timeout_upstream", "type": "timeout", "stream": "upstream",
                                  "toxicity": 0.5, "attributes": {"timeout": 0}}


@pytest.mark.parametrize(("body", "status", "message"), [
    ({"type": "slicr"}, 400, "invalid toxic type"),
    ({"type": "latency", "stream": "sideways"}, 400, "stream was invalid"),
    ({"type": "latency", "toxicity": 2}, 400, "toxicity must be between 0 and 1"),
    ({"type": "latency", "attributes": {"latency": -1}}, 400, "latency must be between"),
    ({"type": "http_error"}, 400, "needs a proxy created with"),
    ({"type": "latency", "ttl_s": 0}, 400, "ttl_s must be between"),
])
def test_bad_toxics_are_refused_with_toxiproxy_statuses(body: dict[str, object], status: int, message: str) -> None:
    with pytest.raises(ApiError) as caught:
        parse_toxic(body, now=0.0)
    assert caught.value.status == status and message in caught.value.message


def test_update_merges_attributes_and_renews_or_clears_the_ttl() -> None:
    toxic = parse_toxic({"type": "latency", "attributes": {"latency": 100, "jitter": 5}, "ttl_s": 10}, now=0.0)
    update_toxic(toxic, {"attributes": {"latency": 200}}, now=5.0)
    assert toxic.attributes == {"latency": 200, "jitter": 5} and toxic.expires_at == 10.0
    update_toxic(toxic, {"ttl_s": 10}, now=8.0)
    assert toxic.expires_at == 18.0
    update_toxic(toxic, {"ttl_s": None, "toxicity": 0.25}, now=9.0)
    assert toxic.expires_at is None and toxic.toxicity == 0.25


def test_http_error_toxic_on_an_http_proxy() -> None:
    toxic = parse_toxic({"type": "http_error", "attributes": {"status": 503, "path_prefix": "/api"}}, 0.0,
                        http_proxy=True)
    assert toxic.attributes == {"status": 503, "path_prefix": "/api"}
    with pytest.raises(ApiError, match="path_prefix"):
        parse_toxic({"type": "http_error", "attributes": {"path_prefix": "api"}}, 0.0, http_proxy=True)


def test_addresses_split_and_join() -> None:
    assert split_address("127.0.0.1:8474") == ("127.0.0.1", 8474)
    assert split_address("[::1]:0") == ("::1", 0)
    assert split_address(":15432") == (None, 15432)
    assert join_address("::1", 5) == "[::1]:5"
    with pytest.raises(ApiError):
        split_address("localhost")
