"""Locust web UI extension, ``/metrics`` and alerting; installed by :mod:`reliability.plugin`.

* :mod:`reliability.web.ui`: the SLA, Faults and Health tabs, the live charts page with the fault
  buttons, its JSON state and ``/metrics`` (Flask, in the web UI's process: master or local runner);
* :mod:`reliability.web.alerting`: the ``alerts:`` plugin extension (gevent: posts webhooks from
  greenlets);
* :mod:`reliability.web.state`, :mod:`~reliability.web.tabs`, :mod:`~reliability.web.metrics`: the
  live state, the tab rows and the Prometheus collector (pure: no locust, gevent or flask).

Nothing is imported here, so the pure modules load without Flask.
"""
