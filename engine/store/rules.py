"""Rules every store adapter applies the same way: the cube-filter key, write checks, and the
one truncation rule for stored step output."""

from __future__ import annotations

import re

from engine.store.ports import JobWrite


def fold(text: str) -> str:
    """The key of the case-insensitive cube filter (both adapters use it)."""
    return text.casefold()


def check_write(write: JobWrite) -> None:
    """Refuse a ``base`` that is not the expected version of the same steps, and outputs for
    steps the written job does not have (a caller's bug)."""
    base = write.base
    if base is not None and (
        base.version != write.expected_version or len(base.steps) != len(write.job.steps)
    ):
        raise ValueError(f"job '{write.job.id}': the base is not the version the write expects")
    if not write.outputs and not write.clear_outputs:
        return
    ids = {step.id for step in write.job.steps}
    strays = {o.step_id for o in write.outputs if o.step_id not in ids}
    strays.update(s for s in write.clear_outputs if s not in ids)
    if strays:
        raise ValueError(f"job '{write.job.id}' has no steps {sorted(strays)}")
    bad = [o.attempt for o in write.outputs if o.attempt < 0]
    if bad:
        raise ValueError(f"output attempts must not be negative: {bad}")


def prepare_output(text: str, max_bytes: int) -> str:
    """Output as stored: bounded by ``bound_output``, and valid UTF-8 (lone surrogates replaced)."""
    text = bound_output(text, max_bytes)
    if not text.isascii():  # O(1) in CPython: only non-ASCII text pays for the check
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            text = text.encode("utf-8", "replace").decode("utf-8")
    return text


#: the note ``bound_output`` puts before a tail it kept (parsed back by ``split_note``)
_NOTE = "[kjobs: {cut} bytes of earlier output were cut to keep the last {limit}]\n"
_NOTE_RE = re.compile(r"\[kjobs: (\d+) bytes of earlier output were cut to keep the last (\d+)\]\n")


def split_note(text: str, max_bytes: int) -> tuple[int, str]:
    """(bytes already cut, the rest) of a text that may start with the note for ``max_bytes``."""
    match = _NOTE_RE.match(text) if text.startswith("[kjobs: ") else None
    if match is None or int(match.group(2)) != max_bytes:
        return 0, text
    return int(match.group(1)), text[match.end() :]


def bound_output(text: str, max_bytes: int, cut: int = 0) -> str:
    """THE truncation rule: keep the tail of ``text`` within ``max_bytes`` (UTF-8 bytes).

    The note before the tail states every byte cut, the ``cut`` bytes a caller dropped
    earlier included. A text that already starts with the note (the live output's) is bounded
    again by adding up, so bounding twice equals bounding once: no fragment of a first note
    survives a second cut.
    """
    earlier, body = split_note(text, max_bytes)
    cut += earlier
    data = body.encode("utf-8", "replace")
    if len(data) > max_bytes:
        tail = data[len(data) - max_bytes :].decode("utf-8", "ignore")
        cut += len(data) - len(tail.encode("utf-8"))
        body = tail
    if not cut:
        return text
    return _NOTE.format(cut=cut, limit=max_bytes) + body
