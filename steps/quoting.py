"""Parameter substitution into shell command templates, with every value shell-quoted.

A placeholder is ``{name}`` (a Python identifier) in a *word position* of the template: outside
quotes and not escaped. The value replaces it ``shlex.quote``d, so it is always one literal word
to ``/bin/sh`` and can inject nothing. Shell syntax that looks like braces is left alone:

- ``${NAME}`` is the shell's parameter expansion, not a placeholder;
- ``\\{name}`` (an escaped brace) stays literal, as it does in the shell;
- inside single or double quotes a ``{word}`` is shell text (``awk '{print}'``) unless ``word``
  is a parameter: a quoted placeholder is refused, because quoting a value that then sits in
  quotes reopens injection (``"'$(cmd)'"`` runs ``cmd``).

Placeholders inside a here-document body are not detected; do not put them there.
"""

from __future__ import annotations

import functools
import re
import shlex
from collections.abc import Mapping

from engine.core.errors import InvalidRequest

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def substitute(template: str, params: Mapping[str, str]) -> str:
    """``template`` with each ``{name}`` replaced by ``shlex.quote(params[name])``.

    Raises ``InvalidRequest`` naming the placeholder when it has no parameter, or when a
    parameter's placeholder sits inside quotes.
    """
    pieces, tail = _scan(template)
    out: list[str] = []
    for literal, name, quote, text in pieces:
        out.append(literal)
        out.append(_replacement(name, quote, params, text))
    out.append(tail)
    return "".join(out)


#: (literal text before it, name, quoting context, the placeholder's own text) per placeholder
_Pieces = tuple[tuple[tuple[str, str, str, str], ...], str]


@functools.lru_cache(maxsize=1024)
def _scan(template: str) -> _Pieces:
    """Where ``template``'s placeholders are and in which quoting context: a template (its
    Hive SQL is kilobytes) is scanned once, not once per build."""
    pieces: list[tuple[str, str, str, str]] = []
    out: list[str] = []
    i = 0
    n = len(template)
    quote = ""  # "", "'" or '"': the quoting context the shell is in at position i
    after_dollar = False  # the previous character was an unescaped "$"
    while i < n:
        ch = template[i]
        if ch == "\\" and quote != "'":
            out.append(template[i : i + 2])
            i += 2
            after_dollar = False
            continue
        if ch == "{" and not after_dollar:
            match = _PLACEHOLDER.match(template, i)
            if match is not None:
                pieces.append(("".join(out), match.group(1), quote, match.group(0)))
                out = []
                i = match.end()
                after_dollar = False
                continue
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        out.append(ch)
        after_dollar = ch == "$" and quote != "'"
        i += 1
    return tuple(pieces), "".join(out)


def _replacement(name: str, quote: str, params: Mapping[str, str], text: str) -> str:
    """What a ``{name}`` found in quoting context ``quote`` becomes."""
    if quote:
        if name in params:
            raise InvalidRequest(
                f"Placeholder '{{{name}}}' is inside quotes in a command template; "
                "placeholders are quoted already and must stand outside quotes"
            )
        return text  # shell text such as awk '{print}'
    if name not in params:
        raise InvalidRequest(
            f"Unknown placeholder '{{{name}}}' in command template "
            f"(known parameters: {', '.join(sorted(params)) or 'none'})"
        )
    return shlex.quote(params[name])
