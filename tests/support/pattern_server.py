"""An HTTP server whose latency and error pattern the tests know exactly.

Run as its own process: ``python tests/support/pattern_server.py --delay-ms 20 --fail-every 50``. It prints
``pattern-server listening on http://127.0.0.1:PORT`` once ready. ``GET /stats`` returns what it did:
requests served, failures returned, every service delay in ms, and a log of (start time, delay,
status) per request. ``POST /pattern`` changes the
pattern mid-run ({"delay_ms", "fail_every", "down": bool}).

* ``--delay-ms D`` with ``--spread lognormal`` draws delays from a seeded lognormal with median D
  (sigma 0.5); ``--spread none`` sleeps exactly D;
* ``--fail-every N`` answers 500 to every Nth request (0 = never);
* ``--down-after S --down-for S`` answers 503 to everything in that span after the first request;
* ``--freeze-every P --freeze-for F --freeze-first S`` freezes completely (a GC pause, a failover):
  from S s after the first request, every P s for F s, a request that arrives holds its answer until
  the freeze ends. ``/stats`` reports the anchor (``freeze_anchor``, epoch s of the first request).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time

from aiohttp import web


class Pattern:
    def __init__(self, args: argparse.Namespace) -> None:
        self.delay_ms: float = args.delay_ms
        self.spread: str = args.spread
        self.fail_every: int = args.fail_every
        self.down_after: float | None = args.down_after
        self.down_for: float = args.down_for
        self.freeze_every: float = args.freeze_every
        self.freeze_for: float = args.freeze_for
        self.freeze_first: float = args.freeze_first
        self.anchor: float | None = None  # epoch s of the first request
        self.down = False
        self.rng = random.Random(args.seed)
        self.first: float | None = None
        self.requests = 0
        self.failures = 0
        self.delays: list[float] = []
        self.log: list[tuple[float, float, int]] = []  # (start epoch s, delay ms, status)

    def frozen_for_s(self) -> float:
        """Seconds until the current freeze ends (0 outside a freeze)."""
        now = time.time()
        if self.anchor is None:
            self.anchor = now
        if not self.freeze_every or not self.freeze_for:
            return 0.0
        since = now - self.anchor - self.freeze_first
        if since < 0:
            return 0.0
        into = since % self.freeze_every
        return self.freeze_for - into if into < self.freeze_for else 0.0

    def next(self) -> tuple[float, int]:
        now = time.monotonic()
        if self.first is None:
            self.first = now
        self.requests += 1
        delay = self.delay_ms
        if self.spread == "lognormal" and delay > 0:
            delay = self.rng.lognormvariate(0.0, 0.5) * self.delay_ms
        status = 200
        if self.down or (
            self.down_after is not None and self.down_after <= now - self.first < self.down_after + self.down_for
        ):
            status = 503
        elif self.fail_every and self.requests % self.fail_every == 0:
            status = 500
        if status != 200:
            self.failures += 1
        self.delays.append(delay)
        self.log.append((time.time(), delay, status))
        return delay, status


async def handle(request: web.Request) -> web.Response:
    pattern: Pattern = request.app["pattern"]
    frozen_s = pattern.frozen_for_s()
    if frozen_s > 0:
        await asyncio.sleep(frozen_s)
    delay_ms, status = pattern.next()
    if delay_ms > 0:
        await asyncio.sleep(delay_ms / 1000.0)
    return web.Response(status=status, text="ok" if status == 200 else "failed")


async def stats(request: web.Request) -> web.Response:
    pattern: Pattern = request.app["pattern"]
    return web.json_response(
        {"requests": pattern.requests, "failures": pattern.failures, "delays": pattern.delays, "log": pattern.log,
         "freeze_anchor": pattern.anchor}
    )


async def change(request: web.Request) -> web.Response:
    pattern: Pattern = request.app["pattern"]
    body = await request.json()
    pattern.delay_ms = float(body.get("delay_ms", pattern.delay_ms))
    pattern.fail_every = int(body.get("fail_every", pattern.fail_every))
    pattern.down = bool(body.get("down", pattern.down))
    return web.json_response({"ok": True})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay-ms", type=float, default=5.0)
    parser.add_argument("--spread", choices=("none", "lognormal"), default="none")
    parser.add_argument("--fail-every", type=int, default=0)
    parser.add_argument("--down-after", type=float, default=None)
    parser.add_argument("--down-for", type=float, default=0.0)
    parser.add_argument("--freeze-every", type=float, default=0.0)
    parser.add_argument("--freeze-for", type=float, default=0.0)
    parser.add_argument("--freeze-first", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    app = web.Application()
    app["pattern"] = Pattern(args)
    app.router.add_get("/stats", stats)
    app.router.add_post("/pattern", change)
    app.router.add_route("*", "/{tail:.*}", handle)

    async def serve() -> None:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", args.port)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        print(f"pattern-server listening on http://127.0.0.1:{port}", flush=True)
        await asyncio.Event().wait()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
