"""What the tests share; the fixtures built on it are in ``tests/conftest.py``.

* ``servers``: throwaway PostgreSQL, Redis, reference target, Toxiproxy and Prometheus servers,
  ``free_port``, ``redis_answers``, ``serve_in_thread`` (an ``http.server`` handler on a free port);
* ``processes``: subprocesses that print a ready line, bounded command runs, the chaos proxy and
  the reference target as processes, an injector a test can kill, ``assert_imports_without``;
* ``locust_runs``: Locust and ``reliability run`` subprocesses with their output read as it comes,
  and scenario files for them;
* ``weblocust``: Locust's web UI in a subprocess, the pattern server helpers, an alert receiver;
* ``plugin_fakes``: a namespace standing in for the plugin, for the live-state and metrics tests;
* ``clients``: small HTTP/WebSocket clients for the target, Redis clients with no hidden retries;
* ``harness``: Locust users run in a subprocess, their samples read back;
* ``fakes``: ``FakeClock``, the one clock tests step by hand;
* ``waits``: ``wait_until`` and ``seconds_until``, on the product's one polling loop;
* ``schemas`` and ``records``: the run record against the shipped JSON Schema, reports against
  external schemas; the record fixtures and their hostile variant;
* scripts the tests launch as their own processes: ``pattern_server.py`` and ``harness.py`` (by
  path), ``hostile_cli`` and ``revert_driver`` (with ``python -m``).

Nothing here imports locust or a database driver at import time except ``clients`` (the Redis
and WebSocket drivers), which conftest imports only inside the fixture that needs it; this
``__init__`` imports nothing, so a script run with ``python -m tests.support.X`` starts clean.
"""
