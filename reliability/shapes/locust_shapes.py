"""Locust load shapes for the progressive levels, step/spike/soak/steady/custom stages and the
capacity search. The only module of ``reliability.shapes`` that imports locust.

Locust runs one shape per run: the first shape class it finds across the ``-f`` files, and shapes
tick only on the master (or the local runner). Three ways to pick one:

1. **In the scenario** (recommended): give the scenario a ``shape:`` section and run it with
   ``--scenario FILE``. When no locustfile defines a shape, the plugin runs :class:`ScenarioShape`
   for it, so the locustfile needs nothing but its users::

       locust -f locustfiles/api.py --headless --scenario scenarios/gold_high_load.yaml

2. **One import** in the locustfile; the scenario's ``shape:`` still wins when there is one::

       from reliability.shapes.locust_shapes import ProgressiveShape  # all five levels
       # RELIABILITY_LEVELS=BASELINE,HIGH_LOAD RELIABILITY_TIME_SCALE=0.1 locust -f ...

3. **A subclass** with a fixed ``spec``. Import the module, not the classes, so that only your
   class is in the locustfile's namespace (an imported class would be found first and win)::

       import reliability.shapes.locust_shapes as shapes
       from reliability.shapes.spec import StepShapeSpec

       class Steps(shapes.ReliabilityShape):
           spec = StepShapeSpec(start_users=50, step_users=50, steps=6, step_s=60)

``RELIABILITY_TIME_SCALE`` (a factor such as 0.1) shortens any of them for a quick run. Every
shape logs each stage it enters; the run record gets a ``stages`` section (or ``capacity`` for
a capacity search). ``tick()`` never raises: an error is logged and stops the run (an exception
there would kill Locust's shape greenlet and exit 2).
"""

from __future__ import annotations

import reliability.plugin  # noqa: F401 - one import in a locustfile also loads the plugin (SLA, record)
from reliability.shapes.locust_base import LEVELS_ENV as LEVELS_ENV
from reliability.shapes.locust_base import TIME_SCALE_ENV as TIME_SCALE_ENV
from reliability.shapes.locust_base import ProgressiveShape as ProgressiveShape
from reliability.shapes.locust_base import ReliabilityShape as ReliabilityShape
from reliability.shapes.locust_base import ScenarioShape as ScenarioShape
from reliability.shapes.locust_base import StageEntry as StageEntry
from reliability.shapes.locust_base import scenario_shape as scenario_shape
