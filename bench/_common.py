"""Shared helpers for the benchmarks, and a minimal HTTP target for ``overhead.py``.

The target is a raw asyncio protocol answering every request with a fixed 200 "ok" (HTTP/1.1
keep-alive, pipelining-safe). It does far less per request than aiohttp, so one core of it
outpaces one core of Locust and the load generator stays the bottleneck. Run it alone with
``python bench/_common.py [--port N]``; it prints ``listening on http://127.0.0.1:PORT``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import shutil
import sys
from collections.abc import Iterable
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # `python bench/x.py` puts bench/, not the repo, on sys.path
    sys.path.insert(0, str(REPO_ROOT))

SAMPLE_SIZE = 100_000
QUANTILES = (0.5, 0.95, 0.99, 0.999)


def samples(kind: str, n: int = SAMPLE_SIZE, seed: int = 42) -> np.ndarray:
    """Latency samples in ms: ``lognormal``, ``bimodal`` or ``pareto`` (heavy tail)."""
    rng = np.random.default_rng(seed)
    if kind == "lognormal":  # median 50 ms, sigma 0.6: a typical healthy API
        return rng.lognormal(math.log(50.0), 0.6, n)
    if kind == "bimodal":  # 70 % cache hits around 3 ms, 30 % misses around 180 ms
        hits = rng.lognormal(math.log(3.0), 0.3, int(n * 0.7))
        misses = rng.lognormal(math.log(180.0), 0.4, n - hits.size)
        both = np.concatenate([hits, misses])
        rng.shuffle(both)
        return both
    if kind == "pareto":  # Pareto alpha 1.5 from 20 ms: p99.9 around 2 s, max tens of seconds
        return (rng.pareto(1.5, n) + 1.0) * 20.0
    raise ValueError(f"unknown sample kind {kind!r}")


SAMPLE_KINDS = ("lognormal", "bimodal", "pareto")


def exact_quantile(sorted_values: np.ndarray, q: float) -> float:
    """The sample at rank floor(q * (n - 1)) (numpy ``method="lower"``)."""
    return float(np.quantile(sorted_values, q, method="lower"))


def rel_error(estimate: float, exact: float) -> float:
    return abs(estimate - exact) / exact


def fmt_table(header: Iterable[str], rows: Iterable[Iterable[object]]) -> str:
    """Plain fixed-width table (first column left-aligned, the others right-aligned)."""
    table = [list(map(str, header))] + [list(map(str, r)) for r in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    lines = []
    for n, r in enumerate(table):
        cells = [r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True)]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def pinned(cpu: int, cmd: list[str], pin: bool = True) -> list[str]:
    """``cmd`` on one CPU (``taskset``), when ``pin``, there are two or more CPUs and taskset exists."""
    if pin and shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
        return ["taskset", "-c", str(cpu), *cmd]
    return cmd


def subprocess_env() -> dict[str, str]:
    """Environment for child processes that must import ``reliability`` from this checkout."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    return env


# -- the fast target ---------------------------------------------------------------------------------

_RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"


class _Ok(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        # GET requests without bodies: one response per header block, in order.
        self.buffer += data
        n = self.buffer.count(b"\r\n\r\n")
        if n:
            self.buffer = self.buffer[self.buffer.rfind(b"\r\n\r\n") + 4 :]
            self.transport.write(_RESPONSE * n)


def serve(port: int = 0) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(_Ok, "127.0.0.1", port, backlog=1024)
        bound = server.sockets[0].getsockname()[1]
        print(f"listening on http://127.0.0.1:{bound}", flush=True)
        async with server:
            await server.serve_forever()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="minimal keep-alive HTTP target answering 200 ok")
    parser.add_argument("--port", type=int, default=0)
    serve(parser.parse_args().port)
