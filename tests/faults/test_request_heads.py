"""Request heads a real ``kjobs serve`` refuses, over a raw socket: a request line or headers
over ``kjobs.server.max-request-head`` get 414 / 431 with Kylin's JSON error body, a head that is
not HTTP gets 400 with it; the server answers the next request as before."""

from __future__ import annotations

import base64
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.conftest import FAST, ServerProcess, start_server

KYLIN_KEYS = ["code", "data", "msg", "exception", "url", "error_code"]
AUTH = "Authorization: Basic " + base64.b64encode(b"ADMIN:KYLIN").decode()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server with a 4 KiB head limit."""
    folder = tmp_path_factory.mktemp("heads")
    settings = {"KJOBS_SERVER_MAX_REQUEST_HEAD": "4096"}
    started = start_server(folder, folder / "k.sqlite", FAST, (), settings)
    yield started
    started.stop()


def exchange(server: ServerProcess, pieces: list[bytes], pause: float = 0.0) -> tuple[int, Any]:
    """Send ``pieces`` (``pause`` s apart), read the answer to its end: status and JSON body."""
    address = urlsplit(server.url)
    with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
        try:
            for piece in pieces:
                sock.sendall(piece)
                time.sleep(pause)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused before the rest was sent: the answer is waiting
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    lines = head.decode("latin-1").lower().split("\r\n")
    if "content-type: application/json" in lines:
        return status, json.loads(body)
    return status, body.decode("utf-8", "replace")


def get(path: str, *headers: str) -> bytes:
    """A GET request head (the server closes the connection after its answer)."""
    lines = [f"GET {path} HTTP/1.1", "Host: x", AUTH, "Connection: close", *headers, "", ""]
    return "\r\n".join(lines).encode()


def test_a_request_line_over_the_limit_is_414_with_kylins_body(server: ServerProcess) -> None:
    status, body = exchange(server, [get("/kylin/api/jobs?q=" + "a" * 5000)])
    assert status == 414
    assert list(body) == KYLIN_KEYS
    assert "Request line longer than 4096 bytes" in body["msg"]
    assert body["error_code"] == "KE-010000003"


def test_headers_over_the_limit_are_431_whole_or_dribbled(server: ServerProcess) -> None:
    pads = [f"X-Pad-{n}: {'p' * 500}" for n in range(10)]
    whole = get("/kylin/api/jobs", *pads)
    dribbled = [whole[i : i + 700] for i in range(0, 8000, 700)]
    for pieces, pause in (([whole], 0.0), (dribbled, 0.02)):
        status, body = exchange(server, pieces, pause)
        assert status == 431
        assert list(body) == KYLIN_KEYS
        assert "Request headers longer than 4096 bytes" in body["msg"]
        assert body["url"] == "/kylin/api/jobs"


def test_a_head_that_is_not_http_is_400_with_kylins_body(server: ServerProcess) -> None:
    status, body = exchange(server, [b"HELLO THERE\r\n\r\n"])
    assert status == 400
    assert list(body) == KYLIN_KEYS
    assert "malformed request line or headers" in body["msg"]


def test_a_head_under_the_limit_is_served_before_and_after_refusals(server: ServerProcess) -> None:
    status, body = exchange(server, [get("/kylin/api/jobs", "X-Pad: " + "p" * 3000)])
    assert status == 200, body
    exchange(server, [get("/kylin/api/jobs?q=" + "a" * 9000)])
    status, _ = exchange(server, [get("/kylin/api/jobs")])
    assert status == 200


def test_the_default_limit_is_16_kib(tmp_path: Path) -> None:
    started = start_server(tmp_path, tmp_path / "k.sqlite", FAST)
    try:
        ok, _ = exchange(started, [get("/kylin/api/jobs", "X-Pad: " + "p" * 15000)])
        refused, body = exchange(started, [get("/kylin/api/jobs", "X-Pad: " + "p" * 17000)])
    finally:
        started.stop()
    assert (ok, refused) == (200, 431)
    assert "16384 bytes" in body["msg"]
