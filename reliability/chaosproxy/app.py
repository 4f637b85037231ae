"""``reliability proxy`` / ``python -m reliability.chaosproxy``: serve the chaos proxy until
SIGINT or SIGTERM.

Prints ``reliability-proxy listening on http://HOST:PORT`` once the API answers. ``--config``
takes a Toxiproxy-style JSON list of proxies to create at start (as ``toxiproxy-server
-config``). On shutdown every listener and connection is closed, so nothing stays toxic.

Example::

    python -m reliability.chaosproxy --port 8474 --config deploy/toxiproxy.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from reliability.chaosproxy.api import build_api
from reliability.chaosproxy.proxy import ProxyCollection, join_address
from reliability.chaosproxy.toxics import ApiError
from reliability.origins import OriginPolicy, is_loopback

READY_PREFIX = "reliability-proxy listening on "
DEFAULT_PORT = 8474


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The proxy's flags."""
    parser.add_argument("--host", default="127.0.0.1", help="API listen address (127.0.0.1)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"API port, 0 = any free one ({DEFAULT_PORT})")
    parser.add_argument("--config", metavar="FILE", help="JSON list of proxies to create at start (Toxiproxy format)")
    parser.add_argument("--seed", type=int, default=None, help="seed for toxicity and jitter draws (random)")
    parser.add_argument("--log-level", default="INFO", help="logging level (INFO)")
    parser.add_argument("--allow-remote", action="store_true",
                        help="let the API and the proxies listen on non-loopback addresses and forward to other "
                             "hosts (the API has no authentication)")
    parser.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                        help="another Host name the API answers to (a DNS or compose service name); repeatable")


def listen_problem(args: argparse.Namespace) -> str | None:
    """Why the API may not listen on ``--host`` (None: loopback, or ``--allow-remote``)."""
    if getattr(args, "allow_remote", False) or is_loopback(args.host):
        return None
    return (f"--host {args.host or 'all interfaces'} is not a loopback address and the API has no "
            "authentication; pass --allow-remote to listen there")


async def serve(args: argparse.Namespace, announce: Callable[[str], None] | None = None) -> int:
    """Serve the API and the proxies until SIGINT or SIGTERM; return the exit code."""
    allow_remote = bool(getattr(args, "allow_remote", False))
    problem = listen_problem(args)
    if problem is not None:
        raise ValueError(problem)
    proxies = ProxyCollection(rng=random.Random(args.seed), allow_remote=allow_remote)
    policy = OriginPolicy(args.host, extra_hosts=getattr(args, "allowed_host", None) or ())
    if args.config:
        try:
            text = Path(args.config).read_text(encoding="utf-8")
        except OSError as exc:
            raise ValueError(f"cannot read {args.config}: {exc.strerror or exc}") from None
        await proxies.populate(json.loads(text))
    runner = web.AppRunner(build_api(proxies, policy), access_log=None)
    await runner.setup()
    sweeper = asyncio.create_task(proxies.sweep_forever())
    try:
        site = web.TCPSite(runner, args.host, args.port)
        await site.start()
        host, port = runner.addresses[0][:2]
        line = READY_PREFIX + "http://" + join_address(str(host), int(port))
        (announce or (lambda text: print(text, flush=True)))(line)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
    finally:
        sweeper.cancel()
        await proxies.close()
        await runner.cleanup()
    return 0


def run(args: argparse.Namespace) -> int:
    """Entry point of ``reliability proxy``: 0 on a clean stop, 1 if it cannot listen, 2 on a
    bad ``--config``."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=str(args.log_level).upper(), stream=sys.stderr,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    problem = listen_problem(args)
    if problem is not None:
        print(f"reliability proxy: {problem}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(serve(args))
    except (ApiError, ValueError) as exc:
        print(f"reliability proxy: bad --config: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"reliability proxy: cannot listen: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
