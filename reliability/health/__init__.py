"""Health checks: one probe per component, the orchestrator, the dependency graph and root cause.

Modules (all pure: none imports locust or gevent, except :mod:`~reliability.health.monitor`)::

    spec          the scenario's ``health:`` section (HealthSpec, ComponentSpec, probe specs)
    base          Status, Finding, ProbeResult, the Probe protocol, Deadline, measure()
    http, postgres, redis, websocket, prometheus, gateway    one probe each
    graph         cycle check, diagnose() (root causes, affected, held), score, overall status
    orchestrator  HealthCheck: all probes concurrently, each under its timeout -> HealthReport
    resources     CPU / memory of the local target process (by PID or listening port)
    timeline      HealthTimeline: rounds -> the run record's ``health`` section, uptime criterion
    monitor       the load-run extension: a background greenlet probing every interval (gevent)
    cli           ``reliability health SCENARIO``: one round, a table, exit 0/1/2

Nothing is imported here: ``reliability.config`` loads :mod:`~reliability.health.spec` while it
is itself being loaded, and probe drivers must not be imported before gevent patches a master.
"""
