"""The GAHP line syntax: splitting request lines, escaping reply tokens, framing input.

The splitter mirrors the gridmanager's own reader (docs/protocol.md) byte for byte, so what
kgahp reads is exactly what the gridmanager meant, and what kgahp writes splits back exactly.
Bytes are decoded as UTF-8 with `surrogateescape`, so any byte string survives a round trip.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Callable, Union

ENCODING = "utf-8"
ERRORS = "surrogateescape"
MAX_LINE_BYTES = 4 * 1024 * 1024    # longer request lines are discarded (answered with E)
_READ_CHUNK = 64 * 1024

_BACKSLASH = 0x5C
_SPACE = 0x20
_CR = 0x0D
_LF = 0x0A


def _decode(raw: bytes) -> str:
    return raw.decode(ENCODING, ERRORS)


def _encode(text: str) -> bytes:
    try:
        return text.encode(ENCODING, ERRORS)
    except UnicodeEncodeError:
        # Lone surrogates that surrogateescape cannot map back (not from our own decoding):
        # a replacement character is better than a crash on the protocol channel.
        return text.encode(ENCODING, "replace")


def split_line(line: bytes) -> list[str]:
    """Split one request line into arguments exactly as the gridmanager's reader does.

    After a backslash the next byte is literal (the backslash is dropped); an unescaped CR is
    dropped; an unescaped space ends an argument (so two spaces give an empty argument); an
    unescaped LF ends the line (anything after it is ignored). Always returns at least one token.

    Done with bytes methods rather than a loop per byte (a submit line is a whole escaped ad):
    escaped backslashes and escaped spaces, the only escapes the gridmanager writes, become
    placeholder bytes absent from the line, and are put back in each token. Any other escape,
    or a line holding every placeholder candidate, takes the byte loop.
    """
    if b"\\" in line:
        free = [c for c in _PLACEHOLDERS if c not in line]
        if len(free) < 2:
            return _split_bytewise(line)
        backslash, space = free[0], free[1]
        line = line.replace(b"\\\\", backslash).replace(b"\\ ", space)
        if b"\\" in line:
            return _split_bytewise(line.replace(backslash, b"\\\\").replace(space, b"\\ "))
    else:
        backslash = space = b""
    end = line.find(b"\n")
    if end >= 0:
        line = line[:end]
    if b"\r" in line:
        line = line.replace(b"\r", b"")
    tokens = line.split(b" ")
    if backslash:
        tokens = [t.replace(backslash, b"\\").replace(space, b" ") for t in tokens]
    return [_decode(t) for t in tokens]


_PLACEHOLDERS = tuple(bytes([b]) for b in range(0x01, 0x09))


def _split_bytewise(line: bytes) -> list[str]:
    tokens: list[str] = []
    current = bytearray()
    escaped = False
    for b in line:
        if escaped:
            current.append(b)
            escaped = False
        elif b == _BACKSLASH:
            escaped = True
        elif b == _CR:
            continue
        elif b == _SPACE:
            tokens.append(_decode(bytes(current)))
            current.clear()
        elif b == _LF:
            break
        else:
            current.append(b)
    tokens.append(_decode(bytes(current)))
    return tokens


def escape_token(text: str) -> str:
    """Escape one reply token: backslash before every space and backslash.

    CR and LF are replaced by a space *before* escaping (as blahpd does): the gridmanager would
    accept them escaped, but a raw line break inside a reply token is too easy to get wrong for
    anything reading our stdout, so a GAHP never emits them. Hence `split(escape(s))` gives `s`
    with CR/LF turned into spaces.
    """
    text = text.replace("\r", " ").replace("\n", " ")
    return text.replace("\\", "\\\\").replace(" ", "\\ ")


def encode_line(tokens: Sequence[str]) -> bytes:
    """Escape each token, join with single spaces, end with CR LF."""
    return _encode(" ".join(escape_token(t) for t in tokens)) + b"\r\n"


@dataclass(frozen=True)
class OversizeLine:
    """Stands in for a request line longer than the limit; its bytes were discarded."""

    length: int


ReadItem = Union[bytes, OversizeLine]


def _trailing_backslashes(buf: bytes | bytearray, end: int, start: int) -> int:
    """How many backslashes immediately precede `end` (not looking before `start`)."""
    i = end
    while i > start and buf[i - 1] == _BACKSLASH:
        i -= 1
    return end - i


class LineReader:
    """Cuts a byte stream into request lines at every LF not escaped by a backslash.

    Tolerates NUL bytes and invalid UTF-8 (lines are bytes). A line longer than `max_line` bytes
    is discarded up to its end and reported as one `OversizeLine`, so memory stays bounded.
    Yields lines without their LF (the CR, if any, is left for `split_line` to drop). A final
    line without LF before EOF is still yielded.
    """

    def __init__(self, read_chunk: Callable[[], bytes], max_line: int = MAX_LINE_BYTES) -> None:
        self._read_chunk = read_chunk
        self._max_line = max_line
        self._buf = bytearray()
        self._start = 0           # where the current line begins in _buf
        self._scan = 0            # _buf[_start:_scan] is known to hold no line end
        self._carry = 0           # parity of a backslash run reaching _start from discarded bytes
        self._discarded = 0       # > 0 while skipping the rest of an oversize line

    def __iter__(self) -> Iterator[ReadItem]:
        while True:
            item = self._next_line()
            if item is not None:
                yield item
                continue
            chunk = self._read_chunk()
            if not chunk:
                break
            if self._start:                     # compact before growing
                del self._buf[: self._start]
                self._scan -= self._start
                self._start = 0
            self._buf += chunk
        rest = len(self._buf) - self._start
        if self._discarded:
            yield OversizeLine(self._discarded + rest)
        elif rest > self._max_line:
            yield OversizeLine(rest)
        elif rest:
            yield bytes(self._buf[self._start:])
        self._buf.clear()
        self._start = self._scan = 0

    def _next_line(self) -> ReadItem | None:
        """Take one complete line from the buffer, or None when more input is needed."""
        buf, start = self._buf, self._start
        pos = max(self._scan, start)
        while True:
            lf = buf.find(b"\n", pos)
            if lf < 0:
                break
            run = _trailing_backslashes(buf, lf, start)
            if run == lf - start:               # the run reaches the line start
                run += self._carry
            if run % 2 == 0:                    # unescaped LF: the line ends here
                length = lf - start
                self._start = self._scan = lf + 1
                self._carry = 0
                if self._discarded:
                    total, self._discarded = self._discarded + length, 0
                    return OversizeLine(total)
                if length > self._max_line:
                    return OversizeLine(length)
                return bytes(buf[start:lf])
            pos = lf + 1
        self._scan = len(buf)
        pending = len(buf) - start
        if pending > self._max_line or (self._discarded and pending):
            # Too long already: forget the bytes but remember whether an escape is pending.
            run = _trailing_backslashes(buf, len(buf), start)
            self._carry = (self._carry + run) % 2 if run == pending else run % 2
            self._discarded += pending
            del buf[:]
            self._start = self._scan = 0
        return None
