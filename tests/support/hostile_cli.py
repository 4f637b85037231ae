"""Run one ``reliability`` subcommand on many files in this one process, each under its own alarm,
and print one JSON line per file: exit code, stderr lines, seconds, whether a traceback escaped.

``python -m tests.support.hostile_cli TIMEOUT_S COMMAND [ARGS...] -- FILE...`` calls
``reliability.cli.main([COMMAND, FILE, *ARGS])`` for each file: the code path of the command
line, without paying the interpreter's start-up once per file. An alarm interrupts a file that
hangs (a blocking ``open`` of a FIFO, a runaway loop) and is reported as ``"hung": true``.
"""

from __future__ import annotations

import contextlib
import io
import json
import signal
import sys
import time
import traceback
from types import FrameType


class Hung(BaseException):
    pass


def _alarm(_signum: int, _frame: FrameType | None) -> None:
    raise Hung


def main(argv: list[str]) -> int:
    timeout_s = float(argv[0])
    split = argv.index("--")
    command, extra, files = argv[1], argv[2:split], argv[split + 1:]
    from reliability.cli import main as cli_main

    signal.signal(signal.SIGALRM, _alarm)
    for path in files:
        err, out = io.StringIO(), io.StringIO()
        started = time.monotonic()
        code: int | None = None
        hung = escaped = False
        signal.setitimer(signal.ITIMER_REAL, timeout_s)
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
                code = cli_main([command, path, *extra])
        except Hung:
            hung = True
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 2
        except BaseException:
            escaped = True
            err.write(traceback.format_exc())
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        print(json.dumps({"file": path, "code": code, "hung": hung, "escaped": escaped,
                          "seconds": round(time.monotonic() - started, 3),
                          "stderr": [line for line in err.getvalue().splitlines() if line.strip()],
                          "stdout": out.getvalue()[-2000:]}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
