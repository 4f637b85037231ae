"""``python -m reliability.health SCENARIO``: the same as ``reliability health SCENARIO``."""

from __future__ import annotations

import sys

from reliability.health.cli import main

sys.exit(main())
