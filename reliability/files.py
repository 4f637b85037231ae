"""Writing output files: atomically, and with the permissions the user's umask gives.

``tempfile.mkstemp`` creates files 0600 whatever the umask, so a record or report renamed into
place from one would be unreadable to a CI step running as another user; Locust's own outputs
(``--html``, ``--csv``) follow the umask (0644 under the usual 022). Ours do too.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def umask_mode(base: int = 0o666) -> int:
    """``base`` less the process umask (0o644 under umask 022)."""
    current = os.umask(0)
    os.umask(current)
    return base & ~current


def write_text_atomic(path: str | os.PathLike[str], content: str, prefix: str = ".tmp-") -> Path:
    """Write ``content`` to ``path`` via a temp file and a rename, so a reader (a CI job uploading
    artefacts while the run ends) never sees half a file; mode from the umask."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=target.suffix, dir=target.parent)
    try:
        os.fchmod(fd, umask_mode())
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(content)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
