"""The chaos proxy: an asyncio TCP proxy with a Toxiproxy-compatible HTTP API (``reliability
proxy``), for network faults between the system under test and its dependencies.

It runs as a process of its own, never inside a load generator, and imports neither locust nor
gevent. Proxies forward connections to their upstream; toxics (latency, bandwidth, timeout,
reset_peer, slow_close, and our ``http_error`` for proxies in HTTP mode) change what passes.
The same client (:class:`reliability.faults.proxy.ToxiproxyClient`) drives it and a real
Toxiproxy.

Example::

    python -m reliability.chaosproxy --port 8474
    # reliability-proxy listening on http://127.0.0.1:8474
    curl -X POST localhost:8474/proxies -d '{"name": "pg", "listen": "127.0.0.1:15432", "upstream": "127.0.0.1:5432"}'
    curl -X POST localhost:8474/proxies/pg/toxics -d '{"type": "latency", "attributes": {"latency": 100}, "ttl_s": 60}'

Modules: ``app`` (command line, serve), ``api`` (HTTP routes), ``proxy`` (listeners and the
collection), ``link`` (one connection's two directions), ``toxics`` (toxic types and JSON),
``httpmode`` (request framing for HTTP mode).
"""
