"""``make readme``: walk the README and write the outputs the tools printed back into it.

Run it after changing an example or the output of a command the README shows; review the diff.
Blocks that fail (not just print something else) are listed and left as they are.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from tests.readme.blocks import parse
from tests.readme.walk import README, rewrite, session


def main() -> int:
    """Walk, rewrite README.md, report what is left."""
    text = README.read_text()
    with (
        tempfile.TemporaryDirectory(prefix="kjobs-readme-") as folder,
        session(Path(folder)) as walk,
    ):
        walk.run(parse(text))
    README.write_text(rewrite(text, walk.rewrites))
    print(f"README.md: {len(walk.rewrites)} output(s) rewritten", file=sys.stderr)
    failed = len(walk.problems) - len(walk.rewrites)
    for problem in walk.problems:
        print(problem, file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
