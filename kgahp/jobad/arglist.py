"""HTCondor argument lists: the V2 `Arguments` and V1 `Args` job-ad attributes.

The job ad already says which syntax it uses (the attribute name), so there is no V1/V2 guessing
here. The V2 tokenizer mirrors `split_args` in HTCondor's condor_arglist.cpp:

* unquoted whitespace (space, tab, CR, LF) separates arguments;
* `'...'` groups characters (whitespace included) into the current argument, and `''` inside a
  quoted section is one literal `'`; quoted and unquoted parts touching each other join
  (`a'b c'd` is the single argument `ab cd`), and `''` alone is an empty argument;
* double quotes and backslashes are ordinary characters (the submit file's `""` escape has already
  been undone by condor_submit before the value reached the job ad);
* an unterminated `'` is an error.

V1 (`Args`, Unix): split on whitespace, no quoting at all.
"""

from __future__ import annotations

from typing import Optional

from kgahp.errors import JobAdError

_WHITESPACE = frozenset(" \t\r\n")
_QUOTE = "'"


def split_v2(text: str, attribute: str = "Arguments") -> tuple[str, ...]:
    """Split a V2 argument string (`Arguments`, or the `Environment` of env lists)."""
    tokens: list[str] = []
    current: list[str] = []
    have_token = False  # a quoted empty section still makes an (empty) argument
    i = 0
    while i < len(text):
        char = text[i]
        if char == _QUOTE:
            have_token = True
            start = i
            i += 1
            while True:
                if i >= len(text):
                    raise JobAdError(
                        f"{attribute} has an unbalanced single quote at character {start + 1}.")
                if text[i] == _QUOTE:
                    if i + 1 < len(text) and text[i + 1] == _QUOTE:
                        current.append(_QUOTE)  # '' inside quotes is a literal quote
                        i += 2
                        continue
                    i += 1  # the closing quote
                    break
                current.append(text[i])
                i += 1
        elif char in _WHITESPACE:
            if have_token:
                tokens.append("".join(current))
                current, have_token = [], False
            i += 1
        else:
            have_token = True
            current.append(char)
            i += 1
    if have_token:
        tokens.append("".join(current))
    return tuple(tokens)


def split_v1(text: str) -> tuple[str, ...]:
    """Split a V1 (`Args`) argument string: whitespace separates, nothing quotes."""
    tokens: list[str] = []
    current: list[str] = []
    for char in text:
        if char in _WHITESPACE:  # the same four characters as V2, not Python's wider set
            if current:
                tokens.append("".join(current))
                current = []
        else:
            current.append(char)
    if current:
        tokens.append("".join(current))
    return tuple(tokens)


def job_arguments(arguments_v2: Optional[str], args_v1: Optional[str]) -> tuple[str, ...]:
    """The job's argv after the executable: `Arguments` when present and non-empty, else `Args`.

    This is blahpd's preference (server.c 1403-1435); an empty `Arguments = ""` does not hide
    a non-empty `Args`.
    """
    if arguments_v2:
        return split_v2(arguments_v2, "Arguments")
    if args_v1:
        return split_v1(args_v1)
    return ()
