"""Run a real command as an unprivileged user, so that file permissions are checked at all.

Root passes every permission check, and CI runs the tests as root: there the command runs as
``nobody`` through ``setpriv``. That user keeps one capability, ``CAP_DAC_READ_SEARCH`` (read
any file, enter any folder), so that it can run this checkout's interpreter and virtualenv
wherever they live (``/root/.pyenv`` included) without opening them up: what it cannot do is
write where the permissions say no, which is what these tests are about. A non-root user runs
the command as itself. Without ``setpriv`` under root the test skips, except in CI
(``CI=true``), where it fails: there it must run.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

NOBODY = 65534
_KEEP = "+dac_read_search"


def unprivileged(argv: Sequence[str]) -> list[str]:
    """``argv`` as a command that runs without the power to ignore file permissions."""
    if os.geteuid() != 0:
        return list(argv)
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        why = "setpriv (util-linux) is needed to run a command as nobody under root"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI must run the permission tests: {why}")
        pytest.skip(why)
    ids = [f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    caps = [f"--inh-caps={_KEEP}", f"--ambient-caps={_KEEP}"]
    return [setpriv, *ids, *caps, "--", *argv]


def writable_by_the_runner(folder: Path) -> None:
    """Let the user ``unprivileged`` runs as write into ``folder``."""
    if os.geteuid() == 0:
        os.chown(folder, NOBODY, NOBODY)


@contextmanager
def shared_folder() -> Iterator[Path]:
    """A fresh folder the unprivileged user can reach (pytest's own is private to its user)."""
    folder = Path(tempfile.mkdtemp(prefix="kjobs-perm-", dir="/tmp"))
    folder.chmod(0o755)
    yield folder
    for path in (folder, *folder.rglob("*")):  # read-only folders first become writable
        if path.is_dir() and not path.is_symlink():
            path.chmod(0o755)
    shutil.rmtree(folder, ignore_errors=True)
