"""The one HTTP client on a real loopback server: bodies, redirects (bounded, http(s) only),
the body cap, timeouts, and secrets masked in every error."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import pytest

from reliability.httpclient import send
from tests.support.servers import serve_in_thread


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *_args: object) -> None:
        return

    def do_GET(self) -> None:  # noqa: N802
        if self.path.startswith("/hop/"):
            left = int(self.path.rsplit("/", 1)[1])
            self.send_response(302)
            self.send_header("Location", "/echo" if left <= 0 else f"/hop/{left - 1}")
            self.end_headers()
            return
        if self.path == "/ftp":
            self.send_response(302)
            self.send_header("Location", "ftp://127.0.0.1/x")
            self.end_headers()
            return
        if self.path.startswith("/slow"):
            time.sleep(2)
        body = b"x" * 5000 if self.path == "/big" else json.dumps({"ua": self.headers["User-Agent"]}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:  # noqa: N802
        data = self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(201)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def server() -> Iterator[str]:
    with serve_in_thread(_Handler) as url:
        yield url


def test_json_round_trip_and_user_agent(server: str) -> None:
    reply = send("POST", f"{server}/echo", {"a": 1})
    assert reply.status == 201 and reply.ok and reply.json() == {"a": 1}
    assert send("GET", f"{server}/echo").json() == {"ua": "locust-reliability"}


def test_redirects_are_bounded(server: str) -> None:
    assert send("GET", f"{server}/hop/2", redirects=3).json() == {"ua": "locust-reliability"}
    stopped = send("GET", f"{server}/hop/5", redirects=2)
    assert stopped.status == 302  # not followed past the limit: the caller sees the redirect
    assert send("GET", f"{server}/hop/0", redirects=0).status == 302


def test_redirect_to_a_non_http_scheme_is_refused(server: str) -> None:
    with pytest.raises(OSError):
        send("GET", f"{server}/ftp")


def test_the_body_is_capped(server: str) -> None:
    assert len(send("GET", f"{server}/big", max_body=100).body) == 100


def test_timeout_is_a_timeout_error_and_secrets_are_masked(server: str) -> None:
    url = server.replace("http://", "http://user:hunter2@") + "/slow?token=abc123"
    started = time.monotonic()
    with pytest.raises(TimeoutError) as caught:
        send("GET", url, timeout_s=0.3)
    assert time.monotonic() - started < 1.5
    assert "hunter2" not in str(caught.value) and "abc123" not in str(caught.value)


def test_no_answer_is_an_os_error_without_the_secret(free_port: object) -> None:
    port = free_port()  # type: ignore[operator]
    with pytest.raises(OSError) as caught:
        send("GET", f"http://127.0.0.1:{port}/?password=s3cret", timeout_s=1.0, secrets=("s3cret",))
    assert "s3cret" not in str(caught.value)
    with pytest.raises(OSError):
        send("GET", "file:///etc/passwd")
