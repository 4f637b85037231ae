"""The process behind the load faults: ``python -m reliability.faults.loadgen``.

It reads one JSON line of settings from stdin, prints ``ready``, and then generates load until
stdin closes (the fault's revert, or the death of the process that started it, which closes the
pipe) or until ``ttl_s`` passes without a ``renew`` line, whichever comes first. On exit it
prints one JSON line of counts. Settings travel on stdin so headers (tokens) never show in
``ps``.

Modes::

    {"mode": "spike", "url": "http://t/api/items", "concurrency": 50, "method": "GET",
     "headers": {}, "request_timeout_s": 10, "ttl_s": 30}
    {"mode": "ws_storm", "url": "ws://t/ws", "connections": 500, "rate_per_s": 100,
     "headers": {}, "ttl_s": 30}

This module imports neither locust nor gevent: the extra load must not share an event loop with
a load generator whose timings we report.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from typing import Required, TypedDict

import aiohttp

from reliability.jsontypes import as_number, as_object, as_str


class LoadSettings(TypedDict, total=False):
    """The settings line (see the module docstring); a key left out takes the default below."""

    mode: Required[str]
    url: Required[str]
    headers: Required[dict[str, str]]
    ttl_s: Required[float | None]
    concurrency: int
    method: str
    request_timeout_s: float
    connections: int
    rate_per_s: float


class CountsJson(TypedDict):
    requests: int
    errors: int
    opened: int
    peak_open: int
    last_error: str | None


def parse_settings(line: bytes) -> LoadSettings:
    """The settings line, checked (ValueError naming the field that is wrong)."""
    data = as_object(json.loads(line or b"{}"), "settings")
    headers = as_object(data.get("headers") or {}, "headers")
    ttl_s = data.get("ttl_s")
    settings: LoadSettings = {"mode": str(data.get("mode") or ""), "url": as_str(data.get("url"), "url"),
                              "headers": {key: as_str(value, f"headers.{key}") for key, value in headers.items()},
                              "ttl_s": None if ttl_s is None else as_number(ttl_s, "ttl_s")}
    if "concurrency" in data:
        settings["concurrency"] = int(as_number(data["concurrency"], "concurrency"))
    if "connections" in data:
        settings["connections"] = int(as_number(data["connections"], "connections"))
    if "method" in data:
        settings["method"] = as_str(data["method"], "method")
    if "request_timeout_s" in data:
        settings["request_timeout_s"] = as_number(data["request_timeout_s"], "request_timeout_s")
    if "rate_per_s" in data:
        settings["rate_per_s"] = as_number(data["rate_per_s"], "rate_per_s")
    return settings


class Counts:
    def __init__(self) -> None:
        self.requests = 0
        self.errors = 0
        self.opened = 0
        self.open = 0
        self.peak_open = 0
        self.last_error: str | None = None

    def failed(self, exc: BaseException) -> None:
        self.errors += 1
        self.last_error = f"{type(exc).__name__}: {exc}"[:200]

    def to_json(self) -> CountsJson:
        return {"requests": self.requests, "errors": self.errors, "opened": self.opened, "peak_open": self.peak_open,
                "last_error": self.last_error}


async def _spike(settings: LoadSettings, counts: Counts) -> None:
    timeout = aiohttp.ClientTimeout(total=float(settings.get("request_timeout_s", 10)))
    concurrency = int(settings.get("concurrency", 50))
    method = str(settings.get("method", "GET"))
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector, headers=settings.get("headers")) as session:

        async def worker() -> None:
            while True:
                try:
                    async with session.request(method, settings["url"]) as response:
                        await response.read()
                        counts.requests += 1
                        if response.status >= 500:
                            counts.errors += 1
                except (aiohttp.ClientError, TimeoutError) as exc:
                    counts.requests += 1
                    counts.failed(exc)
                    await asyncio.sleep(0.01)  # a refused connection must not spin

        await asyncio.gather(*(worker() for _ in range(concurrency)))


async def _storm(settings: LoadSettings, counts: Counts) -> None:
    total = int(settings.get("connections", 200))
    interval_s = 1.0 / float(settings.get("rate_per_s", 100))
    timeout = aiohttp.ClientTimeout(total=None, connect=10)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector, headers=settings.get("headers")) as session:

        async def hold() -> None:
            try:
                async with session.ws_connect(settings["url"], heartbeat=None, autoping=True) as ws:
                    counts.opened += 1
                    counts.open += 1
                    counts.peak_open = max(counts.peak_open, counts.open)
                    try:
                        async for _message in ws:
                            pass
                    finally:
                        counts.open -= 1
            except (aiohttp.ClientError, TimeoutError) as exc:
                counts.failed(exc)

        holders = []
        for _ in range(total):
            holders.append(asyncio.create_task(hold()))
            await asyncio.sleep(interval_s)
        await asyncio.gather(*holders)


async def _control(reader: asyncio.StreamReader, ttl_s: float | None) -> None:
    """Return when stdin closes or the ttl runs out unrenewed."""
    deadline = None if ttl_s is None else time.monotonic() + ttl_s
    while True:
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            return
        try:
            line = await asyncio.wait_for(reader.readline(), left)
        except TimeoutError:
            return
        if not line:
            return
        if line.strip() == b"renew" and ttl_s is not None:
            deadline = time.monotonic() + ttl_s


async def main_async() -> int:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    settings = parse_settings(await reader.readline())
    counts = Counts()
    work = _spike if settings.get("mode") == "spike" else _storm
    task = asyncio.create_task(work(settings, counts))
    print("ready", flush=True)
    control = asyncio.create_task(_control(reader, settings.get("ttl_s")))
    await asyncio.wait({task, control}, return_when=asyncio.FIRST_COMPLETED)
    if task.done() and task.exception() is not None:
        counts.failed(task.exception() or RuntimeError())
    for pending in (task, control):
        pending.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await pending
    print(json.dumps(counts.to_json()), flush=True)
    return 0


def main() -> int:
    try:
        return asyncio.run(main_async())
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
