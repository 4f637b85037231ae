"""p95 of the reference target with 1000 users at 1-2 s think time, next to 100 users.

The target (embedded store and cache) is pinned to core 1 and one Locust process to core 0, so
the generator's own queueing is not the target's latency. Both runs happen side by side in one
invocation; the record's p95 and the generator's CPU are printed for each.

    python bench/target_p95.py [--seconds 60]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCUSTFILE = ROOT / "bench/locustfiles/think_time.py"


def _pin(core: int) -> list[str]:
    return ["taskset", "-c", str(core)] if shutil.which("taskset") else []


def _run(url: str, users: int, seconds: int, out: Path) -> dict[str, object]:
    record = out / f"users-{users}.json"
    cmd = [*_pin(0), sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "-u", str(users),
           "-r", str(max(users // 10, 1)), "-t", f"{seconds}s", "--host", url, "--only-summary",
           "--run-record", str(record), "--sla-tier", "bronze"]
    subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=seconds + 120)
    data: dict[str, object] = json.loads(record.read_text())
    return data


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=60)
    args = parser.parse_args()
    target = subprocess.Popen([*_pin(1), sys.executable, "-m", "reliability.target", "--port", "0"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert target.stdout is not None
        url = target.stdout.readline().strip().rsplit(" ", 1)[1]
        with tempfile.TemporaryDirectory() as tmp:
            for users in (100, 1000):
                rec = _run(url, users, args.seconds, Path(tmp))
                totals = rec["totals"]  # type: ignore[index]
                gen = rec["generators"][0]  # type: ignore[index]
                print(f"{users:5d} users: {totals['rps']:.0f} req/s, p50 {totals['p50_ms']:.1f} ms, "
                      f"p95 {totals['p95_ms']:.1f} ms, p99 {totals['p99_ms']:.1f} ms, "
                      f"errors {totals['error_ratio']:.4f}, "
                      f"generator CPU mean {gen['cpu_mean_pct']:.0f} % max {gen['cpu_max_pct']:.0f} %, "
                      f"verdict exit {rec['sla']['exit_code']}")  # type: ignore[index]
    finally:
        target.terminate()
        target.wait(10)


if __name__ == "__main__":
    main()
