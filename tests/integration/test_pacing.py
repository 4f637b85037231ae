"""Intended starts on a real Locust environment: Locust's scheduling wait times are recognised and
wrapped, and the plugin's request listener measures a marked request from its intended start.

Runs in a subprocess: importing locust monkey-patches the process.
"""

from __future__ import annotations

import json
import subprocess
import sys

from tests.support.processes import ROOT, serve

SCRIPT = r"""
import json, time
import gevent
from locust import User, between, constant, constant_pacing, constant_throughput, poisson, task
from locust.env import Environment

import reliability.plugin as plugin_module
from reliability.pacing import locust_pacing_s, mark_intended_start, pace_user_classes

out = {"intervals": [locust_pacing_s(w) for w in (constant_pacing(0.1), constant_throughput(4), poisson(5),
                                                  between(1, 2), constant(1), lambda u: 1.0)]}

class Paced(User):
    wait_time = constant_pacing(0.05)
    @task
    def t(self):
        pass

class Thinking(User):
    wait_time = between(0.1, 0.2)
    @task
    def t(self):
        pass

out["paced"] = pace_user_classes([Paced, Thinking])
first = Paced.wait_time
out["again"] = pace_user_classes([Paced, Thinking])
out["idempotent"] = Paced.wait_time is first

env = Environment(user_classes=[Paced])
plugin = plugin_module.install(env)
user = Paced(env)

def paced_wait():
    wait_s = user.wait_time()  # the wrapped constant_pacing: marks the next task's start
    mark = gevent.getcurrent().reliability_intended
    return wait_s, mark.start_s - time.time(), mark.interval_ms

out["wait"] = gevent.spawn(paced_wait).get()

def fire(start, name):
    env.events.request.fire(request_type="GET", name=name, response_time=10.0, response_length=0,
                            response=None, context={}, exception=None, start_time=start, url="/")

def marked():
    now = time.time()
    mark_intended_start(now - 0.3, 0.1)  # due 300 ms ago
    fire(now, "/marked")
    fire(now + 0.01, "/second")  # the task's second request: the start was consumed

out["ignored_before_expect"] = None
gevent.spawn(marked).join()
snap = plugin.store.snapshot()
out["ignored_before_expect"] = snap.total.corrected is None
plugin.expect_intended_starts()
gevent.spawn(marked).join()
snap = plugin.store.snapshot()
ep = {e.name: e for e in snap.endpoints}
out["marked"] = [ep["/marked"].hist.max_ms, ep["/marked"].corrected.max_ms]
out["second"] = [ep["/second"].hist.max_ms, ep["/second"].corrected.max_ms]
out["lag"] = plugin.store.schedule_lag().max_ms

from reliability.pacing import intended_start_api

env2 = Environment(user_classes=[Paced])
plugin2 = plugin_module.install(env2)
api = intended_start_api(env2)  # an open-model scheduler: no interval, nothing back-filled

def arrival():
    now = time.time()
    with api(now - 0.5):
        env2.events.request.fire(request_type="GET", name="/arrival", response_time=2000.0, response_length=0,
                                 response=None, context={}, exception=None, start_time=now, url="/")
    with api(now - 0.2):
        pass  # a task without a request leaves no mark behind
    env2.events.request.fire(request_type="GET", name="/later", response_time=10.0, response_length=0,
                             response=None, context={}, exception=None, start_time=now, url="/")

gevent.spawn(arrival).join()
snap2 = plugin2.store.snapshot()
ep2 = {e.name: e for e in snap2.endpoints}
out["arrival"] = [ep2["/arrival"].corrected.max_ms, snap2.total.backfilled, ep2["/later"].corrected is None]

def killed():
    with api(time.time() - 0.1):
        gevent.sleep(10)  # a request in flight when the test stops

def failed():
    with api(time.time() - 0.1):
        raise ValueError("user code failed")

g = gevent.spawn(killed)
gevent.sleep(0.05)
g.kill()
f = gevent.spawn(failed)
f.join()
out["marks_after"] = [g.reliability_intended.start_s is not None, f.reliability_intended.start_s is None]
print(json.dumps(out))
"""


def test_pacing_marks_and_the_listener_measures_from_the_intended_start() -> None:
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["intervals"] == [0.1, 0.25, 0.2, None, None, None]
    assert out["paced"] == {"Paced": 0.05} and out["again"] == {"Paced": 0.05} and out["idempotent"]
    wait_s, due_in_s, interval_ms = out["wait"]
    assert 0 <= wait_s <= 0.05 and abs(due_in_s - wait_s) < 0.02 and interval_ms == 50.0
    assert out["ignored_before_expect"] is True
    measured, corrected = out["marked"]
    assert measured == 10.0 and 305.0 <= corrected <= 400.0
    assert out["second"] == [10.0, 10.0]  # measured: only the task's first request carries the lag
    assert 295.0 <= out["lag"] <= 400.0
    arrival_ms, backfilled, later_unscheduled = out["arrival"]
    assert 2500.0 <= arrival_ms <= 2600.0 and backfilled == 0
    assert later_unscheduled  # measured only: no mark was left for it
    assert out["marks_after"] == [True, True]  # killed mid-task: kept for held_at_stop; failed: cleared


HELD_SCRIPT = r"""
import json, sys, time
import gevent
from locust import HttpUser, constant_pacing, task
from locust.env import Environment

import reliability.plugin as plugin_module

class Paced(HttpUser):
    host = sys.argv[1]
    wait_time = constant_pacing(0.2)

    @task
    def t(self):
        self.client.get("/", timeout=60)

env = Environment(user_classes=[Paced])
plugin = plugin_module.install(env)
runner = env.create_local_runner()
runner.start(4, spawn_rate=100)
gevent.sleep(float(sys.argv[2]))
stop_s = time.time()
runner.stop()
snap = plugin.store.snapshot()
print(json.dumps({"held_at_stop": plugin.store.held_at_stop, "stop_s": stop_s, "requests": snap.total.requests,
                  "seconds": [[s.t, s.requests, s.held, s.done] for s in snap.seconds]}))
"""


def test_scheduled_requests_killed_in_flight_at_the_stop_count_as_held() -> None:
    # fast for 1 s after the first request, then frozen past the stop: 4 paced users each have a
    # request in flight when the runner stops them 4 s in, and no Locust event ever reports it
    with serve(["tests/support/pattern_server.py", "--delay-ms", "5", "--freeze-every", "1000",
                "--freeze-for", "500", "--freeze-first", "1"]) as served:
        proc = subprocess.run([sys.executable, "-c", HELD_SCRIPT, served.url, "4"], capture_output=True, text=True,
                              cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["held_at_stop"] == 4, out
    assert 4 * 4 <= out["requests"] <= 4 * 6  # about 1 s of pacing every 0.2 s (the first task is unmarked)
    rows = {t: (requests, held, done) for t, requests, held, done in out["seconds"]}
    last_done = max(t for t, (_, _, done) in rows.items() if done)
    stop_t = int(out["stop_s"])
    frozen = range(last_done + 2, stop_t)  # whole seconds after the last completion and before the stop
    assert len(frozen) >= 1, rows
    for t in frozen:
        requests, held, done = rows[t]
        assert held == 4 and done == 0 and requests == 0, (t, rows)
    assert all(t <= stop_t for t in rows)  # nothing counted after the stop
