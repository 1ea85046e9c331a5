"""Walk README.md top to bottom as a newcomer would: run every runnable block, check outputs.

Shell blocks (``sh``, ``bash``, ``console`` commands) share one bash session (variables carry
over, as in one terminal) and one ``kjobs serve`` started for the walk; python blocks run as
their own processes. The README's default address (``127.0.0.1:7070``, ``localhost:7070``,
``port=7070``) is rewritten to that server's. ``make readme`` runs the same walk and writes
the outputs it saw back into the README.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from tests.readme.blocks import (
    Block,
    Command,
    commands,
    json_matches,
    mask,
    render_json,
    trimmed_like,
)

STEP_TIMEOUT_S = 600.0  #: one block or command, on a loaded 2-core machine


@dataclass
class Walk:
    """One walk: the session's folder, environment and server address."""

    work: Path
    env: dict[str, str]
    url: str
    problems: list[str] = field(default_factory=list)
    #: (first line, end line, new lines) of README outputs that differ from what ran
    rewrites: list[tuple[int, int, list[str]]] = field(default_factory=list)
    _stdout: str = ""
    _rc: int = 0

    def run(self, blocks: list[Block]) -> None:
        """Run every block in order; problems and rewrites accumulate."""
        for block in blocks:
            if block.marker == "output":
                self._check_output(block)
            elif block.runs and block.lang == "python":
                self._python(block)
            elif block.runs and block.lang == "console":
                for command in commands(block):
                    self._console(block, command)
            elif block.runs:
                self._shell_block(block)

    # -- running --------------------------------------------------------------------------

    def _rewrite(self, code: str) -> str:
        port = str(urlsplit(self.url).port)
        for default in ("http://127.0.0.1:7070", "http://localhost:7070"):
            code = code.replace(default, self.url)
        return code.replace("port=7070", f"port={port}").replace(":7070/", f":{port}/")

    def _shell(self, code: str, strict: bool) -> subprocess.CompletedProcess[str]:
        state = self.work / ".readme-shell-state"
        state.touch()
        script = "\n".join(
            [
                "set -a",
                f". {state}",
                f"cd {self.work}",
                f"( exit {self._rc} )",
                "set -e -o pipefail" if strict else "",
                self._rewrite(code),
                "__rc=$?",
                f"export -p > {state}",
                "exit $__rc",
            ]
        )
        return subprocess.run(
            ["bash", "-c", script],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=STEP_TIMEOUT_S,
            check=False,
        )

    def _shell_block(self, block: Block) -> None:
        done = self._shell("\n".join(block.body), strict=True)
        self._stdout, self._rc = done.stdout, done.returncode
        if done.returncode:
            self.problems.append(
                f"{block.where}: exited {done.returncode}\n{done.stdout[-1500:]}"
                f"{done.stderr[-1500:]}"
            )

    def _python(self, block: Block) -> None:
        path = self.work / f"readme_{block.open + 1}.py"
        if block.marker == "pytest":
            path = path.with_name(f"test_{path.name}")
        path.write_text(self._rewrite("\n".join(block.body)) + "\n")
        argv = [sys.executable, str(path)]
        if block.marker == "pytest":
            argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(path)]
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            env=self.env,
            cwd=self.work,
            timeout=STEP_TIMEOUT_S,
            check=False,
        )
        self._stdout, self._rc = done.stdout, done.returncode
        if done.returncode:
            self.problems.append(
                f"{block.where}: python exited {done.returncode}\n"
                f"{done.stdout[-2000:]}{done.stderr[-2000:]}"
            )

    def _console(self, block: Block, command: Command) -> None:
        done = self._shell(command.code, strict=False)
        self._rc = done.returncode
        self._stdout = done.stdout + (done.stderr if done.returncode else "")
        actual = self._stdout.rstrip("\n").split("\n") if self._stdout.strip() else []
        numbers = block.marker != "exact"
        if mask("\n".join(command.expected), numbers=numbers) != mask(
            "\n".join(actual), numbers=numbers
        ):
            self.problems.append(
                f"README.md:{command.line + 1}: `{command.code}` printed\n"
                + "\n".join(actual)
                + "\n--- the README shows ---\n"
                + "\n".join(command.expected)
            )
            self.rewrites.append((command.first_output, command.end, actual))

    # -- checking -------------------------------------------------------------------------

    def _check_output(self, block: Block) -> None:
        expected_text = "\n".join(block.body)
        if block.lang == "json":
            try:
                actual = json.loads(self._stdout)
            except ValueError:
                self.problems.append(f"{block.where}: not JSON: {self._stdout[-1000:]!r}")
                return
            expected = json.loads(expected_text)
            if not json_matches(expected, actual):
                self.problems.append(
                    f"{block.where}: the answer was\n{json.dumps(actual, indent=2)[:4000]}"
                )
                lines = render_json(trimmed_like(expected, actual), len(block.body) == 1)
                self.rewrites.append((block.open + 1, block.close, lines))
        elif mask(expected_text) != mask(self._stdout):
            self.problems.append(f"{block.where}: the output was\n{self._stdout[-3000:]}")
            self.rewrites.append((block.open + 1, block.close, self._stdout.rstrip().split("\n")))


def rewrite(text: str, rewrites: list[tuple[int, int, list[str]]]) -> str:
    """``text`` with the given line ranges replaced (applied bottom-up)."""
    lines = text.split("\n")
    for start, end, new in sorted(rewrites, reverse=True):
        lines[start:end] = new
    return "\n".join(lines)


REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
TIME_SCALE = 100.0  #: the walk's server: a 10-minute build takes ~6 s, slow_cube a minute


@contextmanager
def session(folder: Path) -> Iterator[Walk]:
    """A walk in ``folder`` (``config/`` linked in) with a fresh ``kjobs serve`` behind it."""
    from tests.conftest import start_server  # the suite's one way to start a real server

    (folder / "config").symlink_to(REPO / "config")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KJOBS_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["XDG_DATA_HOME"] = str(folder / "data")
    env["HOME"] = str(folder)
    server = start_server(folder, folder / "server.sqlite", TIME_SCALE)
    env["KJOBS_URL"] = server.url
    try:
        yield Walk(folder, env, server.url)
    finally:
        server.stop()
