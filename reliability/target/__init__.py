"""The reference system under test, served by ``reliability target`` as its own process.

A small JSON service with the parts a reliability test needs to exercise: bearer-token auth in
front of the API, a PostgreSQL items table behind a circuit breaker and a timeout, a Redis
cache-aside layer that degrades to a bypass, a global rate limit, a deep ``/health``, Prometheus
``/metrics``, an admin API for HTTP-level faults, and a WebSocket endpoint. With no DSN or Redis
URL it runs on embedded in-memory stand-ins with the same behaviour.

Built on aiohttp because it gives HTTP, WebSocket and an HTTP client in one well-kept dependency
with no ASGI server layer to configure, tune or version separately. This package never imports
locust or gevent: the target always runs in a process of its own, so its timings are not
distorted by a load generator's event loop.

Example::

    python -m reliability.target --port 0 --rate-limit-rps 500
    # prints: reliability-target listening on http://127.0.0.1:PORT
"""
