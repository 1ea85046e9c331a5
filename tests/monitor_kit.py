"""Helpers for the monitor's tests: a config with test steps, an SSE reader, metrics parsing."""

from __future__ import annotations

import json
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from engine.config import SHIPPED_CONFIG_DIR
from tests.conftest import AUTH

#: real shell steps appended to the shipped `shell_demo` template (before "Update Cube Info")
FLOOD_STEP = """
[[steps]]
name = "Flood"
cmd_type = "SHELL_CMD"
mode = "real"
command = "seq 1 {lines} | sed 's/^/{pad} /'"
timeout = 120
"""
SLOW_STEP = """
[[steps]]
name = "Count Very Slowly"
cmd_type = "SHELL_CMD"
mode = "real"
command = "for i in $(seq 1 {lines}); do echo slow line $i; sleep {pause}; done"
timeout = 120
"""
UPDATE_MARK = "# Marks the segment READY"


def config_with_steps(folder: Path, *steps: str) -> Path:
    """A copy of the shipped config whose `shell_demo_cube` runs ``steps`` before its last step."""
    target = folder / "config"
    shutil.copytree(SHIPPED_CONFIG_DIR, target)
    template = target / "templates" / "shell_demo.toml"
    text = template.read_text()
    assert UPDATE_MARK in text
    template.write_text(text.replace(UPDATE_MARK, "".join(steps) + "\n" + UPDATE_MARK, 1))
    return target


@dataclass
class SseEvent:
    """One parsed Server-Sent Event."""

    name: str
    data: dict[str, Any]


@dataclass
class SseReader:
    """Reads ``/kylin/api/events`` in a thread; ``events`` grows as they arrive."""

    url: str
    params: dict[str, str] = field(default_factory=dict)
    events: list[SseEvent] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    ended: threading.Event = field(default_factory=threading.Event)
    subscribed: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> SseReader:
        """Connect and wait (bounded) until the server says it listens."""
        threading.Thread(target=self._run, daemon=True).start()
        assert self.subscribed.wait(30), self.error
        return self

    def _run(self) -> None:
        timeout = httpx.Timeout(10.0, read=60.0)
        try:
            with (
                httpx.Client(auth=AUTH, timeout=timeout) as client,
                client.stream("GET", self.url, params=self.params) as response,
            ):
                assert response.status_code == 200, response.read()
                for name, data in parse_sse(response.iter_lines(), self._comment):
                    with self._lock:
                        self.events.append(SseEvent(name, data))
        except BaseException as exc:  # reported by the test through `error`
            self.error = exc
        finally:
            self.subscribed.set()
            self.ended.set()

    def _comment(self, text: str) -> None:
        self.comments.append(text)
        if text == "subscribed":
            self.subscribed.set()

    def snapshot(self) -> list[SseEvent]:
        """The events so far."""
        with self._lock:
            return list(self.events)

    def wait_for(self, found: Callable[[SseEvent], bool], timeout: float = 60.0) -> SseEvent:
        """The first event for which ``found`` is true, waiting (bounded) for it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in self.snapshot():
                if found(event):
                    return event
            if self.ended.is_set():
                break
            time.sleep(0.02)
        raise AssertionError(f"no such event; error={self.error!r}; got {self.snapshot()[-5:]}")


def parse_sse(lines: Iterator[str], on_comment: Callable[[str], None]) -> Iterator[tuple[str, Any]]:
    """(event name, JSON data) of each message; comments go to ``on_comment``."""
    name, data = "message", []
    for line in lines:
        if not line:
            if data:
                yield name, json.loads("\n".join(data))
            name, data = "message", []
        elif line.startswith(":"):
            on_comment(line[1:].strip())
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())


Samples = dict[tuple[str, tuple[Any, ...]], float]


def scrape(
    url: str, auth: tuple[str, str] | None = AUTH
) -> dict[tuple[str, tuple[Any, ...]], float]:
    """``/metrics`` parsed by prometheus_client: {(sample name, sorted labels): value}."""
    response = httpx.get(url + "/metrics", auth=auth, timeout=10)
    assert response.status_code == 200, response.text
    return samples(response.text)


def samples(text: str) -> Samples:
    """Every sample of a Prometheus text document."""
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(metrics: Samples, name: str, **labels: str) -> float:
    """One sample's value (0 when absent)."""
    return metrics.get((name, tuple(sorted(labels.items()))), 0.0)


UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def wait_until(check: Callable[[], Any], timeout: float = 60.0, what: str = "") -> Any:
    """Poll ``check`` (bounded) until it returns something true; that value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what or check}")
