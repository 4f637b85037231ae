"""What the tests share: servers, processes, clients, fakes, waits and schema checks.

* ``servers``: throwaway PostgreSQL, Redis, reference target, Toxiproxy and Prometheus servers;
* ``processes``: subprocesses that print a ready line, bounded command runs, Locust command lines;
* ``schemas``: the run record against the shipped JSON Schema, reports against external schemas;
* scripts the tests launch as their own processes: ``pattern_server.py`` (by path),
  ``hostile_cli`` and ``revert_driver`` (with ``python -m``).

Fixtures built on these live in ``tests/conftest.py``. Nothing here imports locust or a database
driver at import time (importing locust monkey-patches the process with gevent), and this
package's ``__init__`` imports nothing, so a script run with ``python -m tests.support.X`` starts
clean.
"""
