"""``bound_output`` keeps the tail within the byte limit and says how much it cut."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from engine.batch.output import LiveOutput
from engine.store.rules import bound_output, prepare_output

NOTE = re.compile(
    r"^\[kjobs: (\d+) bytes of earlier output were cut to keep the last (\d+)\]\n", re.ASCII
)


def split(bounded: str) -> tuple[int, int, str]:
    """(bytes cut, limit, kept tail) of a bounded text that carries the note."""
    match = NOTE.match(bounded)
    assert match is not None, bounded[:200]
    return int(match.group(1)), int(match.group(2)), bounded[match.end() :]


def test_text_within_the_limit_is_kept_as_it_is() -> None:
    assert bound_output("", 10) == ""
    assert bound_output("0123456789", 10) == "0123456789"
    assert bound_output("é" * 5, 10) == "é" * 5  # 10 bytes exactly


def test_longer_text_keeps_its_tail_and_says_how_much_was_cut() -> None:
    bounded = bound_output("a" * 90 + "b" * 10, 10)
    assert split(bounded) == (90, 10, "b" * 10)


def test_multibyte_characters_are_never_split() -> None:
    text = "€" * 10  # 3 bytes each: a limit of 10 keeps 3 whole characters
    cut, limit, tail = split(bound_output(text, 10))
    assert (cut, limit, tail) == (21, 10, "€€€")


def test_a_character_larger_than_the_limit_is_cut_whole() -> None:
    assert split(bound_output("é", 1)) == (2, 1, "")


def test_fifty_megabytes_stay_bounded() -> None:
    line = "map 42% reduce 7% — still going\n"
    text = line * (50 * 1024 * 1024 // len(line.encode()) + 1)
    limit = 1024 * 1024
    cut, kept_limit, tail = split(bound_output(text, limit))
    total = len(text.encode())
    assert kept_limit == limit
    assert limit - 4 < len(tail.encode()) <= limit
    assert cut == total - len(tail.encode())
    assert text.endswith(tail)


@given(
    text=st.text(st.characters(blacklist_categories=("Cs",)), max_size=300),
    limit=st.integers(min_value=1, max_value=400),
)
def test_the_tail_is_the_longest_suffix_within_the_limit(text: str, limit: int) -> None:
    bounded = bound_output(text, limit)
    size = len(text.encode())
    if size <= limit:
        assert bounded == text
        return
    cut, kept_limit, tail = split(bounded)
    assert kept_limit == limit
    assert text.endswith(tail)
    assert len(tail.encode()) <= limit
    assert cut == size - len(tail.encode())
    # one more character would not fit
    longer = text[len(text) - len(tail) - 1 :]
    assert len(longer.encode()) > limit


def test_prepare_output_bounds_and_replaces_lone_surrogates() -> None:
    assert prepare_output("plain", 100) == "plain"
    assert prepare_output("ünïcode", 100) == "ünïcode"
    assert prepare_output("bad \udcff byte", 100) == "bad ? byte"
    cut, _, tail = split(prepare_output("x" * 50 + "y" * 5, 5))
    assert (cut, tail) == (50, "yyyyy")


@given(
    text=st.text(st.characters(blacklist_categories=("Cs",)), max_size=300),
    limit=st.integers(min_value=1, max_value=400),
)
def test_bounding_twice_equals_bounding_once(text: str, limit: int) -> None:
    once = bound_output(text, limit)
    assert bound_output(once, limit) == once


def test_a_second_cut_adds_to_the_first_count_and_leaves_no_fragment() -> None:
    first = bound_output("a" * 100 + "b" * 50, 50)
    assert split(first) == (100, 50, "b" * 50)
    second = bound_output(first + "c" * 20, 50)
    assert split(second) == (120, 50, "b" * 30 + "c" * 20)


def test_bytes_a_caller_dropped_earlier_are_counted() -> None:
    assert split(bound_output("tail", 10, cut=7)) == (7, 10, "tail")
    assert split(bound_output("0123456789abc", 10, cut=7)) == (10, 10, "3456789abc")


@given(
    chunks=st.lists(st.text(st.characters(blacklist_categories=("Cs",)), max_size=40), max_size=40),
    limit=st.integers(min_value=1, max_value=120),
)
def test_the_live_output_agrees_with_the_store(chunks: list[str], limit: int) -> None:
    live = LiveOutput(limit)
    for chunk in chunks:
        live.write(chunk)
    whole = "".join(chunks)
    assert live.text() == bound_output(whole, limit)
    assert prepare_output(live.text(), limit) == bound_output(whole, limit)
