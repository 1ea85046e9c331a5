"""A real headless Chromium (Debian's ``chromium`` package) driven by Playwright.

Browsers are never downloaded (no ``playwright install``): ``CHROMIUM`` must exist, and CI
installs it with apt-get (``.ci/run``). A missing browser fails these tests; it never skips them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from tests.conftest import AUTH, ServerProcess
from tests.monitor_kit import SLOW_STEP, config_with_steps

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCALE = 5000.0
SLOW_LINES = 80  #: the slow step prints a line every 0.4 s: about half a minute of RUNNING
WAIT_MS = 30_000  #: Playwright's bound for every wait (the machine is shared and loaded)


# Module scope, not session: while Playwright's sync API is open, its event loop counts as
# running in this thread, and the asyncio tests collected after this module could not start one.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, launch_server: Callable[..., ServerProcess]
) -> Iterator[ServerProcess]:
    folder = tmp_path_factory.mktemp("browser")
    config = config_with_steps(folder, SLOW_STEP.format(lines=SLOW_LINES, pause=0.4))
    proc = launch_server(folder, folder / "kjobs.sqlite", SCALE, ("--config", str(config)))
    yield proc
    proc.stop()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(
        viewport={"width": 1280, "height": 800},
        http_credentials={"username": AUTH[0], "password": AUTH[1]},
    )
    context.set_default_timeout(WAIT_MS)
    yield context
    context.close()


@pytest.fixture
def page(context: BrowserContext, server: ServerProcess) -> Iterator[Page]:
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(server.url + "/kylin/")
    page.wait_for_selector('#live[data-live="open"]')
    yield page
    assert not errors, errors
