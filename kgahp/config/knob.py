"""How a knob is declared: `knob(...)` makes a settings field that is the knob KGAHP_<name>, with
its default as written in a config file, its meaning and its parser (`Knob`, kept in the field's
metadata).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

PREFIX = "KGAHP_"


@dataclass(frozen=True)
class Knob:
    """One knob: `name` without the prefix, `default` as written in a config file, `help` its
    meaning; `parse` turns the text into the settings field's value, `choices` limit it.
    `section` and `attr` say which settings field it fills (set when KNOBS is derived)."""

    name: str
    default: str
    help: str
    parse: Callable[[str], Any] = str
    choices: tuple[str, ...] = ()
    section: str = ""
    attr: str = ""


KNOB_KEY = "kgahp.knob"    # the dataclass field metadata key that holds a field's Knob


def knob(name: str, default: str, help: str, *, parse: Callable[[str], Any] = str,
         choices: tuple[str, ...] = ()) -> Any:
    """A settings field that is the knob KGAHP_<name>; its value when the knob is unset is
    `parse(default)`, so the default is written once, as an admin would write it."""
    return field(default=parse(default),
                 metadata={KNOB_KEY: Knob(name, default, help, parse, choices)})
