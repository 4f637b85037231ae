"""Throughput per core of PostgresUser, RedisUser and WebSocketUser vs a raw gevent loop.

For each user class, two load generators run in turn on one pinned core (CPU 0), against the
same server pinned to the other core (CPU 1):

* ``users``: a Locust ``LocalRunner`` with N users of the class, ``wait_time = constant(0)``,
  every request firing Locust's request event into Locust's stats;
* ``raw``:  N greenlets running the same operation with the same client library in a bare loop
  (one connection each, no events, no stats);
* ``minimal``: the least a Locust user can do: the raw operation in a task of a plain ``User``,
  firing the request event by hand. users/minimal is what our class costs on top of Locust;
  minimal/raw is what Locust's own task loop costs (no user class can beat that).

Each reports operations per second and the CPU time it used, so throughput *per core* is
operations / CPU seconds of the generator. The goal is users/raw >= 0.9. For context, the native
benchmark tool of each server is run on the same core (``redis-benchmark -P 1 -c 50 -t get``,
``pgbench -S``); WebSocket has no native tool here.

Run by hand from the repository root (needs PostgreSQL and redis-server binaries, 2+ cores)::

    python bench/users_throughput.py [--seconds 8] [--users 50] [--rounds 3] [--only redis]

Measured on the 2-core development machine (shared, so runs swing by 10-30 %; per-CPU-second
ratios, 50 users, ranges over three runs)::

    component  users/raw   users/minimal  minimal/raw  native tool (same core)
    redis      0.73-0.97   0.97-0.98      0.74-0.84    redis-benchmark -P 1 -c 50: users = 0.29-0.40 of it
    ws         0.78-0.86   0.89-0.91      0.91-0.94    (none)
    postgres   0.52-0.60   0.67-0.74      0.81-0.85    pgbench -S -c 50: users = 0.45-0.79 of it

RedisUser and WebSocketUser cost little over the least a Locust user can do; the gap to the
bare loop is Locust's own task loop. PostgresUser misses the 0.9 goal: its shared
psycopg_pool checkout (getconn + putconn, about 8 us of CPU per query here) and the per-query
timeout come on top of psycopg's ~50 us, and the pool is what makes pool waits visible.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # `python bench/x.py` puts bench/, not the repo, on sys.path
    sys.path.insert(0, str(REPO_ROOT))

GENERATOR_CPU = 0
SERVER_CPU = 1
WARMUP_S = 2.0

USER_CLASSES = {
    "postgres": """
from locust import constant, task
from reliability.users.postgres import PostgresUser

class Bench(PostgresUser):
    wait_time = constant(0)
    pool_size = {users}

    @task
    def one(self):
        self.query("select 1", "SELECT 1")
""",
    "redis": """
from locust import constant, task
from reliability.users.redis import RedisUser

class Bench(RedisUser):
    wait_time = constant(0)

    @task
    def one(self):
        self.get("bench:key")
""",
    "ws": """
from locust import constant, task
from reliability.users.websocket import WebSocketUser

class Bench(WebSocketUser):
    wait_time = constant(0)

    @task
    def one(self):
        self.echo("x")
""",
}


# -- child processes (pinned to the generator core) -------------------------------------------
def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _raw_operation(component: str, url: str) -> Any:
    """A zero-argument callable doing one operation over its own connection (the raw loop)."""
    if component == "postgres":
        import psycopg

        conn = psycopg.connect(url, autocommit=True)
        return lambda: conn.execute("SELECT 1").fetchall()
    if component == "redis":
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        client = redis.Redis.from_url(url, retry=Retry(NoBackoff(), 0), socket_timeout=5.0,
                                      single_connection_client=True)
        return lambda: client.get("bench:key")
    import itertools

    import websocket

    ws = websocket.create_connection(url, timeout=5.0)
    ids = itertools.count()

    def echo() -> None:
        ws.send(json.dumps({"op": "echo", "id": next(ids), "data": "x"}))
        json.loads(ws.recv())

    return echo


def _measure(count: Any, seconds: float) -> tuple[float, float, float, float, float, float]:
    """(ops, cpu, wall) at the end of the warm-up and ``seconds`` later."""
    import gevent

    gevent.sleep(WARMUP_S)
    before = (count(), _cpu_s(), time.perf_counter())
    gevent.sleep(seconds)
    return (*before, count(), _cpu_s(), time.perf_counter())


def _minimal_user(component: str, url: str) -> Any:
    from locust import User, constant, task

    class Minimal(User):
        wait_time = constant(0)

        def on_start(self) -> None:
            self.operation = _raw_operation(component, url)

        @task
        def one(self) -> None:
            start_time = time.time()
            start = time.perf_counter()
            self.operation()
            self.environment.events.request.fire(
                request_type=component, name="one", response_time=(time.perf_counter() - start) * 1000,
                response_length=0, response=None, context={}, exception=None, start_time=start_time, url=None,
            )

    return Minimal


def _our_user(component: str, url: str, users: int) -> Any:
    import importlib.util
    import tempfile

    env_var = {"postgres": "RELIABILITY_PG_DSN", "redis": "RELIABILITY_REDIS_URL", "ws": "RELIABILITY_WS_URL"}
    os.environ[env_var[component]] = url
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as source:
        source.write(USER_CLASSES[component].replace("{users}", str(users)))
    spec = importlib.util.spec_from_file_location("bench_users", source.name)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    os.unlink(source.name)
    return module.Bench


def child(mode: str, component: str, url: str, users: int, seconds: float) -> None:
    os.sched_setaffinity(0, {GENERATOR_CPU})
    import locust  # noqa: F401  (patches the process before any driver is imported)

    # isort: split
    import gevent

    if mode == "raw":
        count = [0]

        def loop(operation: Any) -> None:
            while True:
                operation()
                count[0] += 1

        operations = [_raw_operation(component, url) for _ in range(users)]
        greenlets = [gevent.spawn(loop, op) for op in operations]
        n0, c0, t0, n1, c1, t1 = _measure(lambda: count[0], seconds)
        gevent.killall(greenlets, timeout=2)
    else:
        from locust.env import Environment

        user_class = _minimal_user(component, url) if mode == "minimal" else _our_user(component, url, users)
        env = Environment(user_classes=[user_class])
        runner = env.create_local_runner()
        runner.start(users, spawn_rate=users * 10)
        n0, c0, t0, n1, c1, t1 = _measure(lambda: env.stats.total.num_requests, seconds)
        failures = env.stats.total.num_failures
        runner.quit()
        if failures:
            print(f"warning: {failures} failed requests", file=sys.stderr)
    print(json.dumps({"ops": n1 - n0, "wall_s": t1 - t0, "cpu_s": c1 - c0}), flush=True)


# -- orchestration ----------------------------------------------------------------------------
def run_child(mode: str, component: str, url: str, users: int, seconds: float) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run(
        [sys.executable, __file__, "--child", mode, "--component", component, "--url", url,
         "--users", str(users), "--seconds", str(seconds)],
        capture_output=True, text=True, env=env, timeout=seconds + 120, check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{mode} {component} failed:\n{done.stderr[-2000:]}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    result["ops_per_s"] = result["ops"] / result["wall_s"]
    result["ops_per_cpu_s"] = result["ops"] / max(result["cpu_s"], 1e-9)
    return result


def pin(pid: int, cpu: int) -> None:
    """Pin a server and its children (PostgreSQL backends fork from the postmaster)."""
    os.sched_setaffinity(pid, {cpu})


def native_redis(port: int, users: int) -> float | None:
    if not shutil.which("redis-benchmark"):
        return None
    done = subprocess.run(
        ["taskset", "-c", str(GENERATOR_CPU), "redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-P", "1",
         "-c", str(users), "-t", "get", "-n", "300000", "--csv", "-q"],
        capture_output=True, text=True, timeout=300, check=False,
    )
    match = re.search(r'"GET","([\d.]+)"', done.stdout)
    return float(match.group(1)) if match else None


def native_pgbench(dsn_port: int, users: int, seconds: float, bindir: Path) -> float | None:
    pgbench = bindir / "pgbench"
    if not pgbench.exists():
        pgbench = Path(shutil.which("pgbench") or "/nonexistent")
    if not pgbench.exists():
        return None
    base = ["-h", "127.0.0.1", "-p", str(dsn_port), "-U", "postgres"]
    subprocess.run([str(pgbench), "-i", "-q", "-s", "1", *base, "postgres"], capture_output=True, timeout=300,
                   check=True)
    done = subprocess.run(
        ["taskset", "-c", str(GENERATOR_CPU), str(pgbench), "-S", "-c", str(users), "-j", "1",
         "-T", str(int(seconds)), *base, "postgres"],
        capture_output=True, text=True, timeout=seconds + 120, check=False,
    )
    match = re.search(r"tps = ([\d.]+)", done.stdout)
    return float(match.group(1)) if match else None


def report(component: str, users_run: dict[str, float], raw_run: dict[str, float], minimal_run: dict[str, float],
           native: float | None, native_name: str) -> None:
    print(f"{component}: users {users_run['ops_per_s']:,.0f} ops/s ({users_run['ops_per_cpu_s']:,.0f} per CPU-s, "
          f"{users_run['cpu_s'] / users_run['wall_s']:.0%} CPU); raw loop {raw_run['ops_per_s']:,.0f} ops/s "
          f"({raw_run['ops_per_cpu_s']:,.0f} per CPU-s, {raw_run['cpu_s'] / raw_run['wall_s']:.0%} CPU)")
    print(f"RATIO {component} users/raw per core: {users_run['ops_per_cpu_s'] / raw_run['ops_per_cpu_s']:.2f} "
          f"(goal >= 0.90); per wall second: {users_run['ops_per_s'] / raw_run['ops_per_s']:.2f}")
    print(f"RATIO {component} users/minimal-locust-user per core: "
          f"{users_run['ops_per_cpu_s'] / minimal_run['ops_per_cpu_s']:.2f}; "
          f"minimal-locust-user/raw per core: {minimal_run['ops_per_cpu_s'] / raw_run['ops_per_cpu_s']:.2f}")
    if native is not None:
        print(f"RATIO {component} users/{native_name}: {users_run['ops_per_s'] / native:.2f} "
              f"({native_name} {native:,.0f} ops/s on the same core)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=2, help="alternating runs of each mode (best is kept)")
    parser.add_argument("--only", choices=sorted(USER_CLASSES), action="append")
    parser.add_argument("--child", choices=["users", "raw", "minimal"], help=argparse.SUPPRESS)
    parser.add_argument("--component", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.component, args.url, args.users, args.seconds)
        return 0
    if len(os.sched_getaffinity(0)) < 2:
        print("needs 2 CPUs: one for the generator, one for the server", file=sys.stderr)
        return 1

    from tests.support.servers import PostgresServer, RedisServer, TargetServer

    wanted = args.only or sorted(USER_CLASSES)
    for component in wanted:
        if component == "postgres":
            server: Any = PostgresServer()
        elif component == "redis":
            server = RedisServer()
        else:
            server = TargetServer()
        with server:
            assert server.pid is not None
            pin(server.pid, SERVER_CPU)
            if component == "postgres":
                url = server.dsn
            elif component == "redis":
                url = server.url
                subprocess.run(["redis-cli", "-p", str(server.port), "SET", "bench:key", "x" * 100],
                               capture_output=True, timeout=10, check=False)
            else:
                url = server.ws_url
            # alternate so drift hits both sides alike; keep the better of two runs of each
            runs: dict[str, list[dict[str, float]]] = {"users": [], "raw": [], "minimal": []}
            for _ in range(args.rounds):
                for mode in ("raw", "minimal", "users"):
                    runs[mode].append(run_child(mode, component, url, args.users, args.seconds))
            best = {mode: max(found, key=lambda r: r["ops_per_cpu_s"]) for mode, found in runs.items()}
            native: float | None = None
            native_name = ""
            if component == "redis":
                native, native_name = native_redis(server.port, args.users), "redis-benchmark"
            elif component == "postgres":
                native = native_pgbench(server.port, args.users, args.seconds, server.bindir)
                native_name = "pgbench -S"
            report(component, best["users"], best["raw"], best["minimal"], native, native_name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
