"""Child process for the crash test: runs one build on a SQLite file until it is killed."""

from __future__ import annotations

import sys

import anyio

from engine.cli import configure_logging
from engine.config import load_config
from engine.facade import Engine


async def main(store: str, workdir: str) -> None:
    config = load_config(
        overrides={"kjobs.store": store, "kjobs.time-scale": 200, "kjobs.workdir": workdir}
    )
    async with Engine(config) as engine:
        job = await engine.submit_build("kylin_sales_cube", "BUILD", 0, 86_400_000)
        print(job.id, flush=True)
        await anyio.sleep_forever()


if __name__ == "__main__":
    configure_logging(verbose=False)  # logs to stderr: stdout carries the job id
    anyio.run(main, sys.argv[1], sys.argv[2])
