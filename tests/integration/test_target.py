"""The reference target in embedded mode (in-memory store and cache), as a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator

import pytest
import websocket
from prometheus_client.parser import text_string_to_metric_families

from tests.support.clients import Http, logged_in, ws_connect, ws_json
from tests.support.processes import TargetProcess

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def target() -> Iterator[TargetProcess]:
    with TargetProcess() as proc:
        yield proc


@pytest.fixture
def client(target: TargetProcess) -> Iterator[Http]:
    yield from logged_in(target)


def test_ready_line_names_the_real_port(target: TargetProcess) -> None:
    assert target.ready_line == f"reliability-target listening on http://127.0.0.1:{target.port}"
    assert target.port > 0


def test_health_is_healthy_in_embedded_mode(client: Http) -> None:
    reply = client.get("/health", auth=False)
    assert reply.status == 200
    body = reply.json()
    assert body["status"] == "healthy"
    assert body["breaker"] == "closed"
    for name in ("db", "cache"):
        component = body["components"][name]
        assert component["status"] == "up"
        assert component["latency_ms"] >= 0
        assert "in-memory" in component["detail"]


def test_login_rejects_bad_credentials_and_bad_json(client: Http) -> None:
    assert client.request("POST", "/auth/login", {"username": "demo", "password": "nope"}).status == 401
    assert client.request("POST", "/auth/login", {"username": "ghost", "password": "demo"}).status == 401
    reply = client.request("POST", "/auth/login", raw=b"{not json")
    assert reply.status == 400
    assert reply.json() == {"error": "body is not valid JSON"}


@pytest.mark.parametrize(
    ("authorization", "status"),
    [(None, 401), ("Basic ZGVtbzpkZW1v", 401), ("Bearer", 401), ("Bearer a b", 401), ("Bearer not-issued", 403)],
)
def test_api_gateway_rejects_missing_and_unknown_tokens(
    target: TargetProcess, authorization: str | None, status: int
) -> None:
    http = Http(target.port)
    headers = {} if authorization is None else {"Authorization": authorization}
    reply = http.get("/api/items", headers=headers)
    http.close()
    assert reply.status == status
    assert "error" in reply.json()
    if status == 401:
        assert reply.headers["WWW-Authenticate"] == "Bearer"


def test_item_lifecycle_with_cache_headers(client: Http) -> None:
    created = client.request("POST", "/api/items", {"name": "widget", "value": 2.5})
    assert created.status == 201
    item = created.json()
    assert item["name"] == "widget" and item["value"] == 2.5 and isinstance(item["id"], int)
    assert created.headers["Location"] == f"/api/items/{item['id']}"
    path = f"/api/items/{item['id']}"

    first, second = client.get(path), client.get(path)
    assert (first.status, first.headers["X-Cache"]) == (200, "miss")
    assert (second.status, second.headers["X-Cache"]) == (200, "hit")
    assert first.json() == second.json() == item

    updated = client.request("PUT", path, {"name": "gadget", "value": -1})
    assert updated.status == 200 and updated.json()["name"] == "gadget"
    after_update = client.get(path)
    assert after_update.headers["X-Cache"] == "miss", "PUT must invalidate the cached item"
    assert after_update.json()["value"] == -1.0

    assert client.request("DELETE", path).json() == {"deleted": item["id"]}
    gone = client.get(path)
    assert gone.status == 404 and gone.json() == {"error": f"item {item['id']} not found"}
    assert client.request("DELETE", path).status == 404
    assert client.request("PUT", path, {"name": "x", "value": 1}).status == 404


def test_seeded_items_are_listed_newest_first_with_a_limit(client: Http) -> None:
    reply = client.get("/api/items?limit=3")
    assert reply.status == 200
    ids = [item["id"] for item in reply.json()["items"]]
    assert len(ids) == 3 and ids == sorted(ids, reverse=True)
    assert len(client.get("/api/items").json()["items"]) == 50
    assert client.get("/api/items/1").json()["name"] == "item-1"


@pytest.mark.parametrize("query", ["limit=0", "limit=1001", "limit=abc", "limit=-1"])
def test_bad_limit_is_400(client: Http, query: str) -> None:
    reply = client.get(f"/api/items?{query}")
    assert reply.status == 400
    assert "limit" in reply.json()["error"]


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"{oops", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"name": "a"}', "missing field(s): value"),
        (b'{"name": "a", "value": true}', "'value'"),
        (b'{"name": "a", "value": "1"}', "'value'"),
        (b'{"name": "", "value": 1}', "'name'"),
        (b'{"name": "a", "value": 1, "extra": 0}', "unknown field(s): extra"),
        (b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),
    ],
)
def test_bad_item_bodies_are_400_with_a_one_line_error(client: Http, raw: bytes, fragment: str) -> None:
    reply = client.request("POST", "/api/items", raw=raw)
    assert reply.status == 400
    error = reply.json()["error"]
    assert fragment in error and "\n" not in error


@pytest.mark.parametrize("item_id", ["abc", "0", "99999999999", "2147483648"])
def test_impossible_item_ids_are_404(client: Http, item_id: str) -> None:
    reply = client.get(f"/api/items/{item_id}")
    assert reply.status == 404
    assert reply.json() == {"error": "item not found"}


def test_report_aggregates_the_items(client: Http) -> None:
    reply = client.get("/api/report")
    assert reply.status == 200
    report = reply.json()
    assert set(report) == {"count", "sum", "avg", "min", "max"}
    assert report["count"] >= 300
    assert report["avg"] == pytest.approx(report["sum"] / report["count"])


def test_unknown_route_and_method_are_json_errors(client: Http) -> None:
    missing = client.get("/nope")
    assert missing.status == 404 and missing.headers["Content-Type"].startswith("application/json")
    wrong = client.request("PATCH", "/health")
    assert wrong.status == 405 and "GET" in wrong.headers["Allow"]


def test_metrics_parse_and_count_routes_and_cache(client: Http) -> None:
    client.get("/api/items/7")
    client.get("/api/items/7")
    client.get("/api/items/does-not-exist")
    text = client.get("/metrics", auth=False).body.decode()
    families = {family.name: family for family in text_string_to_metric_families(text)}
    for name in (
        "reliability_target_requests",
        "reliability_target_request_duration_seconds",
        "reliability_target_cache_lookups",
        "reliability_target_breaker_state",
        "reliability_target_db_pool_in_use",
        "reliability_target_db_pool_size",
        "reliability_target_in_flight_requests",
    ):
        assert name in families, name
    routes = {
        (s.labels["route"], s.labels["status"])
        for s in families["reliability_target_requests"].samples
        if s.name.endswith("_total")
    }
    assert ("/api/items/{id}", "200") in routes
    assert ("/api/items/{id}", "404") in routes
    assert not any("does-not-exist" in route for route, _ in routes), "raw paths must not become labels"
    cache = {
        s.labels["outcome"]: s.value
        for s in families["reliability_target_cache_lookups"].samples
        if s.name.endswith("_total")
    }
    assert cache["hit"] >= 1 and cache["miss"] >= 1 and cache["bypass"] == 0
    assert families["reliability_target_breaker_state"].samples[0].value == 0
    assert families["reliability_target_in_flight_requests"].samples[0].value >= 1  # this scrape


def test_admin_fault_adds_latency_to_api_only(client: Http) -> None:
    set_reply = client.request("POST", "/admin/faults", {"latency_ms": 300})
    assert set_reply.status == 200
    assert set_reply.json()["fault"]["latency_ms"] == 300
    assert client.get("/admin/faults").json()["fault"]["route_prefix"] == "/api"
    slow = client.get("/api/items/2")
    assert slow.status == 200 and slow.elapsed_s >= 0.3
    assert client.get("/health").elapsed_s < 0.2, "operator routes never get faults"
    assert client.request("POST", "/auth/login", {"username": "demo", "password": "demo"}).elapsed_s < 0.2
    assert client.request("DELETE", "/admin/faults").json() == {"fault": None}
    assert client.request("DELETE", "/admin/faults").status == 200, "DELETE is idempotent"
    assert client.get("/api/items/2").elapsed_s < 0.2


def test_admin_fault_error_ratio_is_about_right(client: Http) -> None:
    client.request("POST", "/admin/faults", {"error_ratio": 0.5, "status": 503})
    statuses = Counter(client.get("/api/items/3").status for _ in range(300))
    assert set(statuses) == {200, 503}
    # 300 draws at p = 0.5: the standard deviation of the ratio is ~0.029; allow ~5 of them.
    assert 0.35 <= statuses[503] / 300 <= 0.65, statuses
    injected = next(r for r in (client.get("/api/items/3") for _ in range(50)) if r.status == 503)
    assert injected.json() == {"error": "injected fault"} and injected.headers["Retry-After"] == "1"


def test_admin_fault_removes_itself_after_ttl(client: Http) -> None:
    client.request("POST", "/admin/faults", {"error_ratio": 1.0, "status": 500, "ttl_s": 0.5})
    assert client.get("/api/items/4").status == 500
    assert 0 < client.get("/admin/faults").json()["fault"]["expires_in_s"] <= 0.5
    time.sleep(0.6)
    assert client.get("/admin/faults").json() == {"fault": None}
    assert client.get("/api/items/4").status == 200


def test_admin_fault_route_prefix_scopes_the_fault(client: Http) -> None:
    client.request("POST", "/admin/faults", {"error_ratio": 1.0, "status": 429, "route_prefix": "/api/report"})
    assert client.get("/api/report").status == 429
    assert client.get("/api/items/5").status == 200


@pytest.mark.parametrize(
    "body",
    [
        {"latency_ms": -1},
        {"error_ratio": 1.5},
        {"status": 200},
        {"status": True},
        {"ttl_s": 0},
        {"route_prefix": "api"},
        {"latency": 5},
        [1],
    ],
)
def test_admin_fault_rejects_bad_bodies(client: Http, body: object) -> None:
    reply = client.request("POST", "/admin/faults", body)
    assert reply.status == 400
    assert client.get("/admin/faults").json() == {"fault": None}


def test_admin_token_guards_admin_routes() -> None:
    with TargetProcess(env={"RELIABILITY_ADMIN_TOKEN": "adm1n-s3cret"}) as proc:
        http = Http(proc.port)
        assert http.get("/admin/faults").status == 403
        assert http.get("/admin/faults", headers={"X-Admin-Token": "wrong"}).status == 403
        assert http.request("DELETE", "/admin/faults", headers={"X-Admin-Token": "wrong"}).status == 403
        ok = http.get("/admin/faults", headers={"X-Admin-Token": "adm1n-s3cret"})
        assert ok.status == 200 and ok.json() == {"fault": None}
        http.close()
        assert "adm1n-s3cret" not in proc.log and "adm1n-s3cret" not in proc.ready_line


def test_rate_limit_answers_429_with_retry_after_under_a_burst() -> None:
    with TargetProcess("--rate-limit-rps", "5") as proc:
        http = Http(proc.port)
        statuses = [http.get("/api/items").status for _ in range(30)]
        assert statuses[:5] == [401] * 5, "the first second's worth passes (to the auth check)"
        # 5 pass at once and 5 more per second after; a slow machine may refill a few.
        assert statuses.count(429) >= 15
        limited = http.get("/api/items")
        assert limited.status == 429 and int(limited.headers["Retry-After"]) >= 1
        assert http.get("/health").status == 200, "operator routes are not rate limited"
        time.sleep(0.5)
        assert http.get("/api/items").status == 401, "tokens refill"
        http.close()


def test_users_and_password_come_from_the_environment() -> None:
    env = {"RELIABILITY_TARGET_PASSWORD": "from-env", "RELIABILITY_TARGET_USERS": "alice:pw,bob"}
    with TargetProcess(env=env) as proc:
        http = Http(proc.port)
        http.login("alice", "pw")
        http.login("bob", "from-env")
        assert http.request("POST", "/auth/login", {"username": "demo", "password": "demo"}).status == 401
        http.close()
        assert "from-env" not in proc.log


@pytest.mark.parametrize(
    ("args", "fragment"),
    [(["--breaker-failures", "0"], "breaker_failures"), (["--db-timeout-ms", "-5"], "db_timeout_ms")],
)
def test_bad_options_exit_2_with_one_line(args: list[str], fragment: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "reliability.target", "--port", "0", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert fragment in done.stderr and done.stdout == ""


def test_websocket_echo_and_verbatim_non_json(target: TargetProcess) -> None:
    conn = ws_connect(target.port)
    try:
        conn.send(json.dumps({"op": "echo", "id": 1, "data": {"x": [1, "two"]}}))
        assert ws_json(conn) == {"op": "echo", "id": 1, "data": {"x": [1, "two"]}}
        for raw in ("plain text", "{'op': 'echo'}", "__import__('os').system('false')"):
            conn.send(raw)
            assert conn.recv() == raw
        conn.send(json.dumps({"op": "nope"}))
        assert ws_json(conn)["op"] == "error"
        conn.send(json.dumps({"op": "echo", "id": 2, "delay_ms": "soon"}))
        assert ws_json(conn)["op"] == "error"
    finally:
        conn.close()


def test_websocket_delayed_echo_does_not_block_other_clients(target: TargetProcess) -> None:
    slow, fast = ws_connect(target.port), ws_connect(target.port)
    try:
        started = time.perf_counter()
        slow.send(json.dumps({"op": "echo", "id": "slow", "data": 1, "delay_ms": 800}))
        slow.send(json.dumps({"op": "echo", "id": "same-socket", "data": 2}))
        fast.send(json.dumps({"op": "echo", "id": "fast", "data": 3}))
        assert ws_json(fast)["id"] == "fast"
        assert time.perf_counter() - started < 0.4
        assert ws_json(slow)["id"] == "same-socket", "a delayed echo does not hold its own socket either"
        assert ws_json(slow) == {"op": "echo", "id": "slow", "data": 1}
        assert time.perf_counter() - started >= 0.8
    finally:
        slow.close()
        fast.close()


def test_websocket_broadcast_reaches_every_client_including_sender(target: TargetProcess) -> None:
    sender, other = ws_connect(target.port), ws_connect(target.port)
    try:
        # Make sure both sockets are registered before the broadcast.
        for conn in (sender, other):
            conn.send(json.dumps({"op": "echo", "id": 0}))
            ws_json(conn)
        before = time.time()
        sender.send(json.dumps({"op": "broadcast", "data": {"hello": "all"}}))
        for conn in (sender, other):
            message = ws_json(conn)
            assert message["op"] == "broadcast" and message["data"] == {"hello": "all"}
            assert before - 1 <= message["sent_at"] <= time.time() + 1
    finally:
        sender.close()
        other.close()


def test_websocket_subscribe_pushes_until_unsubscribe(target: TargetProcess) -> None:
    conn = ws_connect(target.port)
    try:
        started = time.perf_counter()
        conn.send(json.dumps({"op": "subscribe", "interval_ms": 50}))
        pushes = [ws_json(conn) for _ in range(6)]
        elapsed = time.perf_counter() - started
        assert [p["seq"] for p in pushes] == [1, 2, 3, 4, 5, 6]
        assert all(p["op"] == "push" and isinstance(p["sent_at"], float) for p in pushes)
        assert 0.25 <= elapsed < 1.5
        conn.send(json.dumps({"op": "unsubscribe"}))
        conn.send(json.dumps({"op": "echo", "id": "marker"}))
        while ws_json(conn).get("id") != "marker":
            pass  # pushes already queued before the unsubscribe
        conn.settimeout(0.3)
        with pytest.raises(websocket.WebSocketTimeoutException):
            conn.recv()
    finally:
        conn.close()


def test_many_concurrent_websocket_clients_get_their_own_echoes(target: TargetProcess) -> None:
    errors: list[str] = []

    def client(n: int) -> None:
        conn = ws_connect(target.port)
        try:
            for i in range(20):
                conn.send(json.dumps({"op": "echo", "id": [n, i]}))
                if ws_json(conn)["id"] != [n, i]:
                    errors.append(f"client {n} message {i}")
        finally:
            conn.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert not errors
