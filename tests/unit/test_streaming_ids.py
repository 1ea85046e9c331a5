"""Segment ids of the streaming loops: seeded version-4 uuids, as ``uuid.UUID`` writes them."""

from __future__ import annotations

import random
import uuid

from engine.streaming.runs import uuid4_text


def test_uuid4_text_is_the_uuid_modules_text() -> None:
    rng = random.Random(7)
    for bits in [0, (1 << 128) - 1, *(rng.getrandbits(128) for _ in range(2000))]:
        assert uuid4_text(bits) == str(uuid.UUID(int=bits, version=4))
