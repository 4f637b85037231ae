"""The throwaway servers start, answer, stop, restart on the same port and clean up."""

from __future__ import annotations

import socket
from collections.abc import Callable

from tests.support.servers import PostgresServer, RedisServer, port_accepts


def _redis_roundtrip(port: int, command: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
        sock.sendall(command)
        return sock.recv(256)


def _pg_query(dsn: str, sql: str) -> object:
    import psycopg  # here, not at module level: keeps collection free of drivers

    with psycopg.connect(dsn, connect_timeout=5) as conn:
        row = conn.execute(sql).fetchone()
        assert row is not None
        return row[0]


def test_postgres_start_stop_restart(postgres_server: PostgresServer) -> None:
    pg = postgres_server
    assert pg.is_running()
    assert pg.dsn == f"postgresql://postgres@127.0.0.1:{pg.port}/postgres"
    assert _pg_query(pg.dsn, "SELECT 1") == 1
    assert _pg_query(pg.dsn, "SHOW fsync") == "off"
    first_pid = pg.pid
    pg.stop()
    assert not pg.is_running()
    assert pg.pid is None
    assert not port_accepts(pg.port)
    pg.start()
    assert pg.is_running()
    assert pg.pid != first_pid
    pg.restart()
    assert _pg_query(pg.dsn, "SELECT 2") == 2


def test_redis_start_stop_restart(redis_server: RedisServer) -> None:
    rs = redis_server
    assert rs.url == f"redis://127.0.0.1:{rs.port}/0"
    assert _redis_roundtrip(rs.port, b"SET k v\r\n") == b"+OK\r\n"
    assert _redis_roundtrip(rs.port, b"CONFIG GET save\r\n").endswith(b"save\r\n$0\r\n\r\n")
    pid = rs.pid
    rs.stop()
    assert not rs.is_running()
    assert rs.pid is None
    rs.restart()
    assert rs.is_running()
    assert rs.pid != pid
    assert _redis_roundtrip(rs.port, b"GET k\r\n") == b"$-1\r\n"  # no persistence across restarts


def test_redis_close_removes_directory() -> None:
    rs = RedisServer()
    rs.start()
    assert rs.base.exists()
    rs.close()
    assert not rs.base.exists()
    assert rs.pid is None


def test_free_port_fixture(free_port: Callable[[], int]) -> None:
    port = free_port()
    assert 0 < port < 65536
    assert not port_accepts(port)


def test_postgres_kill_then_start_recovers() -> None:
    pg = PostgresServer()
    try:
        pg.start()
        pg.kill()
        assert not pg.is_running()
        pg.start()
        assert _pg_query(pg.dsn, "SELECT 3") == 3
    finally:
        pg.close()
    assert not pg.base.exists()


def test_redis_kill_then_start(redis_server: RedisServer) -> None:
    redis_server.kill()
    assert not redis_server.is_running()
    redis_server.start()
    assert _redis_roundtrip(redis_server.port, b"PING\r\n") == b"+PONG\r\n"
