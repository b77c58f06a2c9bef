"""Kubernetes resource quantities ("100m", "64Mi", "1e3") parsed exactly, as the apiserver does."""

from __future__ import annotations

import re
from fractions import Fraction
from functools import lru_cache

# The apiserver's decode error for anything that does not look like a quantity (recording 03e).
QUANTITY_REGEX_ERROR = (
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
)
SUFFIX_ERROR = "unable to parse quantity's suffix"

_SHAPE = re.compile(r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$")
_NUMBER = re.compile(r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)$")
_EXPONENT = re.compile(r"^[eE]([-+]?[0-9]+)$")

_SUFFIXES: dict[str, Fraction] = {
    "": Fraction(1),
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 1000),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
    "Ki": Fraction(2**10),
    "Mi": Fraction(2**20),
    "Gi": Fraction(2**30),
    "Ti": Fraction(2**40),
    "Pi": Fraction(2**50),
    "Ei": Fraction(2**60),
}


class QuantityError(ValueError):
    """The text is not a Kubernetes quantity; str() is the apiserver's message."""


def parse_quantity(text: object) -> Fraction:
    """Exact value of a quantity; ints/floats are accepted as JSON numbers are."""
    if isinstance(text, str):
        return _parse_text(text)
    if isinstance(text, bool):
        raise QuantityError(QUANTITY_REGEX_ERROR)
    if isinstance(text, int):
        return Fraction(text)
    if isinstance(text, float):
        return Fraction(str(text))
    raise QuantityError(QUANTITY_REGEX_ERROR)


@lru_cache(maxsize=4096)
def _parse_text(text: str) -> Fraction:
    shape = _SHAPE.match(text)
    if not shape:
        raise QuantityError(QUANTITY_REGEX_ERROR)
    number, suffix = shape.group(1), shape.group(2)
    if not _NUMBER.match(number):
        raise QuantityError(QUANTITY_REGEX_ERROR)
    value = Fraction(number)
    if suffix in _SUFFIXES:
        return value * _SUFFIXES[suffix]
    exponent = _EXPONENT.match(suffix)
    if exponent:
        return value * Fraction(10) ** int(exponent.group(1))
    raise QuantityError(SUFFIX_ERROR)


def is_negative(text: object) -> bool:
    return parse_quantity(text) < 0
