"""All-or-nothing report folders (PRODUCT §4).

A folder is built beside its final place, then swapped in under a lock: the old
folder is renamed aside, the new one renamed in, the old one removed. A failure at
any point before the swap leaves the previous report as it was.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_folder(final: Path, keep: bool = False) -> Iterator[Path]:
    """Yield a fresh staging folder; on success it replaces ``final`` atomically.

    Parameters
    ----------
    final
        The folder to create or replace.
    keep
        Start the staging folder as a copy of the existing ``final`` (for commands
        that add files to an existing report, like ``sensitivity``).
    """
    from filelock import FileLock

    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(final.parent / f".{final.name}.lock"))
    with lock:
        staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.new-", dir=final.parent))
        umask = os.umask(0)
        os.umask(umask)
        staging.chmod(0o777 & ~umask)  # mkdtemp makes it private; a report is not
        try:
            if keep and final.is_dir():
                shutil.copytree(final, staging, dirs_exist_ok=True)
            yield staging
            aside = None
            if final.exists():
                aside = final.parent / f".{final.name}.old-{os.getpid()}"
                os.replace(final, aside)
            os.replace(staging, final)
            if aside is not None:
                shutil.rmtree(aside, ignore_errors=True)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
