"""Rules every store adapter applies the same way: the cube-filter key, write checks, and the
one truncation rule for stored step output."""

from __future__ import annotations

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


def bound_output(text: str, max_bytes: int) -> str:
    """Keep the tail of ``text`` within ``max_bytes`` (UTF-8), saying what was cut."""
    data = text.encode("utf-8", "replace")
    if len(data) <= max_bytes:
        return text
    tail = data[len(data) - max_bytes :].decode("utf-8", "ignore")
    cut = len(data) - len(tail.encode("utf-8"))
    return f"[kjobs: {cut} bytes of earlier output were cut to keep the last {max_bytes}]\n{tail}"
