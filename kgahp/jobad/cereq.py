"""Unwind `CERequirements` into a name -> value map, as blahpd does for its batch scripts.

HTCondor-CE and older routes carry site attributes in `CERequirements`, e.g.
`KubernetesImage == "python:3.12" && RequestCpus == 4 && CondorCE == 1`. blahpd "unwinds" it
(classad_binary_op_unwind.C) into shell assignments for the batch submit scripts; kgahp exposes the
same information as `JobRequest.ce_attributes` for the attribute contract and for admin templates.

For every conjunct of the top-level `&&` chain (parenthesised `&&` chains nest):

| conjunct                       | emits                    |
|--------------------------------|--------------------------|
| `Name == lit`, `Name =?= lit`  | `Name: lit`              |
| `Name < lit`, `Name <= lit`    | `Name_Max: lit` (numeric lit only) |
| `Name > lit`, `Name >= lit`    | `Name_Min: lit` (numeric lit only) |
| `lit < Name`, `lit <= Name`    | `Name_Min: lit`          |
| `lit > Name`, `lit >= Name`    | `Name_Max: lit`          |
| `member(lit, Name)`            | `Name[i]: lit`, i = 0, 1, ... per Name |

`lit` is anything that evaluates without attribute references to a string, number or boolean
(strings come out unquoted); an `undefined` literal (what the gridmanager writes for a listed name
the job lacks) is skipped. Anything else (`||`, `!=`, functions, two references, a ternary) is
ignored, never an error. Unlike blahpd, comparisons below a `||` are not emitted: a disjunction
does not assert either side. Names keep the case written in the expression; a later conjunct with
the same name wins, as a later shell assignment would.

Why a small splitter: classad2 exposes no expression tree (no operator/operand API). So classad2
parses and canonicalises the expression (`str(ExprTree)` prints a normalised form, e.g. `=?=`
becomes `is`), a scanner that only understands string literals, quoted names and brackets finds the
top-level operators of that canonical text, and classad2 again evaluates each literal side and
lists the attribute references (`externalRefs`) of the other side.
"""

from __future__ import annotations

import functools
import logging
import math
import re
from typing import Optional

import classad2

from kgahp.model import Scalar

log = logging.getLogger(__name__)

_ATTRIBUTE = "CERequirements"
_IDENTIFIER = re.compile(r"(?:MY\.)?([A-Za-z_][A-Za-z0-9_]*)\Z", re.IGNORECASE)
_MEMBER_CALL = re.compile(r"member\s*\(", re.IGNORECASE)
# a call of any function but member(): time(), random() and the like
_CALL = re.compile(r"(?<![\w.])(?!member\s*\()[A-Za-z_]\w*\s*\(", re.IGNORECASE)

# Symbolic operators, longest first so that `=?=` is not read as `=`...
_SYMBOLS = ("=?=", "=!=", ">>>", "==", "!=", "<=", ">=", "<<", ">>", "&&", "||",
            "<", ">", "?", ":", "|", "^", "&")
_WORD_OPERATORS = {"is": "==", "isnt": "!="}
_OPEN = "([{"
_CLOSE = ")]}"
_NOT_A_CONJUNCTION = frozenset({"||", "?", ":"})      # bind looser than && at the top level
_LOOSER_THAN_COMPARISON = frozenset({"|", "^", "&"})  # (a == 1) | b is not a comparison
_EQUALITY = frozenset({"==", "=?="})
_ORDERING = {"<": "_Max", "<=": "_Max", ">": "_Min", ">=": "_Min"}
_FLIPPED = {"_Max": "_Min", "_Min": "_Max"}
_COMPARISONS = frozenset({"==", "!=", "=?=", "=!=", "<", "<=", ">", ">="})


def unwind(ad: classad2.ClassAd) -> dict[str, Scalar]:
    """The `CERequirements` of `ad` as {name: value}; {} when absent or when nothing unwinds."""
    try:
        text = _requirements_text(ad)
        if text is None:
            return {}
        if _CALL.search(text):   # a function may answer differently each time: not remembered
            return _unwound(text)
        return dict(_remembered(text))
    except Exception as err:  # unwinding is best effort by contract: never an error
        log.debug("CERequirements not unwound: %s", type(err).__name__)
        return {}


def _unwound(text: str) -> dict[str, Scalar]:
    found: dict[str, Scalar] = {}
    _unwind_conjunction(text, found, {})
    return found


@functools.lru_cache(maxsize=256)
def _remembered(text: str) -> tuple[tuple[str, Scalar], ...]:
    """The jobs of one CE route, or of one pilot factory entry, carry the same few
    `CERequirements`: each text is scanned once (the scan, a loop per character, was a third
    of parsing such an ad)."""
    return tuple(_unwound(text).items())


def unwind_expression(text: str) -> dict[str, Scalar]:
    """Unwind one expression given as ClassAd text (what `CERequirements` holds)."""
    try:
        return _unwound(str(classad2.ExprTree(text)))
    except Exception as err:  # same contract as unwind()
        log.debug("expression not unwound: %s", type(err).__name__)
        return {}


def _requirements_text(ad: classad2.ClassAd) -> Optional[str]:
    """Canonical text of the expression; a string value is parsed as an expression first."""
    if _ATTRIBUTE not in ad:
        return None
    value = ad.eval(_ATTRIBUTE)
    if isinstance(value, str):
        return str(classad2.ExprTree(value)) if value.strip() else None
    return str(ad.lookup(_ATTRIBUTE))


def _unwind_conjunction(text: str, found: dict[str, Scalar], member_counts: dict[str, int]) -> None:
    operators = _top_level_operators(text)
    if any(op in _NOT_A_CONJUNCTION for _, op in operators):
        return
    start = 0
    for position, op in operators:
        if op == "&&":
            _unwind_conjunct(text[start:position], found, member_counts)
            start = position + 2
    _unwind_conjunct(text[start:], found, member_counts)


def _unwind_conjunct(text: str, found: dict[str, Scalar], member_counts: dict[str, int]) -> None:
    text = text.strip()
    if not text:
        return
    if text[0] == "(" and _matching_close(text, 0) == len(text) - 1:
        _unwind_conjunction(text[1:-1], found, member_counts)
        return
    call = _MEMBER_CALL.match(text)
    if call and _matching_close(text, call.end() - 1) == len(text) - 1:
        _unwind_member(text[call.end():-1], found, member_counts)
        return
    operators = _top_level_operators(text)
    if any(op in _LOOSER_THAN_COMPARISON for _, op in operators):
        return
    comparisons = [(pos, op) for pos, op in operators if op in _COMPARISONS]
    if len(comparisons) != 1:
        return
    position, op = comparisons[0]
    width = _operator_width(text, position, op)
    left, right = text[:position], text[position + width:]
    _emit_comparison(left, op, right, found)


def _emit_comparison(left: str, op: str, right: str, found: dict[str, Scalar]) -> None:
    name, value, flipped = _reference_and_literal(left, right)
    if name is None or value is None:
        return
    if op in _EQUALITY:
        found[name] = value
    elif op in _ORDERING and _is_number(value):
        suffix = _ORDERING[op]
        found[name + (_FLIPPED[suffix] if flipped else suffix)] = value


def _unwind_member(arguments: str, found: dict[str, Scalar], member_counts: dict[str, int]) -> None:
    commas = [pos for pos, op in _top_level_operators(arguments, commas=True) if op == ","]
    if len(commas) != 1:
        return
    literal, reference = arguments[:commas[0]], arguments[commas[0] + 1:]
    name, value = _reference(reference), _literal(literal)
    if name is None or value is None:
        return
    index = member_counts.get(name, 0)
    member_counts[name] = index + 1
    found[f"{name}[{index}]"] = value


def _reference_and_literal(left: str, right: str) -> tuple[Optional[str], Optional[Scalar], bool]:
    """(attribute name, literal value, True when the literal is on the left)."""
    name, value = _reference(left), _literal(right)
    if name is not None and value is not None:
        return name, value, False
    name, value = _reference(right), _literal(left)
    if name is not None and value is not None:
        return name, value, True
    return None, None, False


def _reference(text: str) -> Optional[str]:
    """The attribute name when `text` is a bare reference (optionally `MY.`), else None."""
    text = text.strip()
    match = _IDENTIFIER.match(text)
    if not match or match.group(1).lower() in ("true", "false", "undefined", "error"):
        return None
    refs = _references(classad2.ExprTree(text))
    if len(refs) != 1 or refs[0].lower() not in (match.group(1).lower(), text.lower()):
        return None
    return match.group(1)


def _literal(text: str) -> Optional[Scalar]:
    """The value of a side that needs no attribute to evaluate; None for anything else."""
    text = text.strip()
    if not text:
        return None
    expr = classad2.ExprTree(text)
    if _references(expr):
        return None
    value = expr.eval()
    if isinstance(value, classad2.Value):  # undefined/error (an IntEnum, so test it first)
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (str, bool, int, float)):
        return value
    return None  # lists, nested ads, times


def _references(expr: classad2.ExprTree) -> list[str]:
    """Attribute names `expr` refers to (classad2 pads an empty answer with one '')."""
    scope = classad2.ClassAd()  # empty, so every reference is external
    return [ref for ref in scope.externalRefs(expr) if ref]


def _is_number(value: Scalar) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _operator_width(text: str, position: int, op: str) -> int:
    for word in _WORD_OPERATORS:
        if _WORD_OPERATORS[word] == op and text[position:position + len(word)].lower() == word:
            if position + len(word) == len(text) or not _is_name_char(text[position + len(word)]):
                return len(word)
    return len(op)


def _top_level_operators(text: str, commas: bool = False) -> list[tuple[int, str]]:
    """(position, operator) of every operator outside strings, quoted names and brackets.

    Word operators `is`/`isnt` are reported as `==`/`!=` at their position.
    """
    found: list[tuple[int, str]] = []
    depth = 0
    i = 0
    while i < len(text):
        char = text[i]
        if char in "\"'":
            i = _skip_quoted(text, i)
            continue
        if char in _OPEN:
            depth += 1
        elif char in _CLOSE:
            depth -= 1
        elif depth == 0:
            if commas and char == ",":
                found.append((i, ","))
            elif _is_name_char(char):
                end = i
                while end < len(text) and _is_name_char(text[end]):
                    end += 1
                word = text[i:end].lower()
                if word in _WORD_OPERATORS:
                    found.append((i, _WORD_OPERATORS[word]))
                i = end
                continue
            else:
                symbol = next((s for s in _SYMBOLS if text.startswith(s, i)), None)
                if symbol is not None:
                    found.append((i, symbol))
                    i += len(symbol)
                    continue
        i += 1
    return found


def _skip_quoted(text: str, start: int) -> int:
    """Index just after the string literal (or quoted attribute name) starting at `start`."""
    quote = text[start]
    i = start + 1
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == quote:
            return i + 1
        i += 1
    return len(text)


def _matching_close(text: str, open_at: int) -> int:
    """Index of the bracket closing the one at `open_at`, or -1."""
    depth = 0
    i = open_at
    while i < len(text):
        char = text[i]
        if char in "\"'":
            i = _skip_quoted(text, i)
            continue
        if char in _OPEN:
            depth += 1
        elif char in _CLOSE:
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


def _is_name_char(char: str) -> bool:
    return char.isalnum() or char in "_."
