from __future__ import annotations

import io
from collections.abc import Iterator

from hypothesis import given, settings
from hypothesis import strategies as st

from kgahp.protocol.escaping import (
    LineReader,
    OversizeLine,
    _split_bytewise,
    encode_line,
    escape_token,
    split_line,
)

FAST = settings(max_examples=150, deadline=None)


def read_all(data: bytes, max_line: int = 1 << 20, chunk: int = 7) -> list[bytes | OversizeLine]:
    stream = io.BytesIO(data)
    return list(LineReader(lambda: stream.read(chunk), max_line))


# --- split_line: the gridmanager's splitter (§2.3)

@settings(max_examples=1500, deadline=None)
@given(st.lists(st.sampled_from([b"\\", b" ", b"\r", b"\n", b"a", b"\x01", b"\x02", b"\x03",
                                 b"\xff", b"\xc3\xa9"]), max_size=30)
       | st.binary(max_size=40))
def test_split_fast_path_agrees_with_the_byte_loop(parts: list[bytes] | bytes) -> None:
    line = parts if isinstance(parts, bytes) else b"".join(parts)
    assert split_line(line) == _split_bytewise(line)


def test_split_line_with_every_placeholder_byte() -> None:
    line = bytes(range(1, 9)) + b"a\\ b\\\\c d\r\n"
    assert split_line(line) == _split_bytewise(line) == [bytes(range(1, 9)).decode() + "a b\\c",
                                                         "d"]


def test_split_plain_request() -> None:
    assert split_line(b"BLAH_PING 2 kubernetes\r") == ["BLAH_PING", "2", "kubernetes"]


def test_split_escaped_space_and_backslash() -> None:
    assert split_line(b"a\\ b c\\\\d") == ["a b", "c\\d"]


def test_split_backslash_takes_next_byte_literally() -> None:
    # \n is the letter n, not a newline; \" is a quote; escaped CR and LF survive.
    assert split_line(b'x\\n\\"y\\\rz\\\nw') == ['xn"y\rz\nw']


def test_split_unescaped_cr_dropped_anywhere() -> None:
    assert split_line(b"CO\rMMANDS\r") == ["COMMANDS"]


def test_split_double_and_trailing_spaces_give_empty_tokens() -> None:
    assert split_line(b"a  b ") == ["a", "", "b", ""]
    assert split_line(b"") == [""]


def test_split_stops_at_unescaped_lf() -> None:
    assert split_line(b"a b\nc d") == ["a", "b"]


def test_split_keeps_nul_and_invalid_utf8() -> None:
    tokens = split_line(b"a\x00b \xff\xfe")
    assert tokens[0] == "a\x00b"
    assert tokens[1].encode("utf-8", "surrogateescape") == b"\xff\xfe"


def test_worked_example_status_line_section_2_4() -> None:
    ad = '[ HoldReason = "Pod \\"x\\" failed"; JobStatus = 5 ]'
    wire = (b'12 0 No\\ error 5 [\\ HoldReason\\ =\\ "Pod\\ \\\\"x\\\\"\\ failed";'
            b'\\ JobStatus\\ =\\ 5\\ ]\r\n')
    assert encode_line(["12", "0", "No error", "5", ad]) == wire
    assert split_line(wire) == ["12", "0", "No error", "5", ad]
    # The trailing-space mistake the spec warns about yields an empty 4th token.
    assert split_line(b"12 0 No\\ error \r\n") == ["12", "0", "No error", ""]


# --- escape_token / encode_line

def test_escape_replaces_line_breaks_by_space() -> None:
    assert escape_token("a\r\nb") == "a\\ \\ b"
    assert b"\n" not in encode_line(["x\ny"])[:-1]


def test_encode_line_single_spaces_crlf() -> None:
    assert encode_line(["S", "Async mode on"]) == b"S Async\\ mode\\ on\r\n"


def test_encode_unencodable_surrogate_does_not_crash() -> None:
    line = encode_line(["a\ud800b"])
    assert line.endswith(b"\r\n") and split_line(line) == ["a?b"]


_bytes_text = st.binary(max_size=200).map(lambda b: b.decode("utf-8", "surrogateescape"))
_any_text = st.one_of(st.text(max_size=200), _bytes_text,
                      st.text(alphabet=" \\\r\n\x00\"R", max_size=30))


@FAST
@given(st.lists(_any_text, min_size=1, max_size=6))
def test_escape_then_split_round_trips(tokens: list[str]) -> None:
    expected = [t.replace("\r", " ").replace("\n", " ") for t in tokens]
    assert split_line(encode_line(tokens)) == expected


@FAST
@given(st.binary(max_size=300))
def test_split_never_fails_and_round_trips_bytes(raw: bytes) -> None:
    raw = raw.replace(b"\n", b"")
    tokens = split_line(raw)
    assert len(tokens) >= 1
    assert "".join(tokens).encode("utf-8", "surrogateescape") == (
        _unescaped_bytes_without_separators(raw))


def _unescaped_bytes_without_separators(raw: bytes) -> bytes:
    """Independent, simpler statement of §2.3 for content: drop unescaped CR/space, and escapes."""
    out = bytearray()
    it: Iterator[int] = iter(raw)
    for b in it:
        if b == 0x5C:
            nxt = next(it, None)
            if nxt is not None:
                out.append(nxt)
        elif b not in (0x0D, 0x20):
            out.append(b)
    return bytes(out)


# --- LineReader

def test_reader_splits_on_unescaped_lf_only() -> None:
    data = b"A 1\r\nB a\\\nb\r\nC x\\\\\r\nD"
    assert read_all(data) == [b"A 1\r", b"B a\\\nb\r", b"C x\\\\\r", b"D"]


def test_reader_escape_state_crosses_chunk_boundaries() -> None:
    data = b"X " + b"\\" * 5 + b"\nstill\nnext\n"
    for chunk in (1, 2, 3, 64):
        assert read_all(data, chunk=chunk) == [b"X " + b"\\" * 5 + b"\nstill", b"next"]


def test_reader_nul_and_invalid_utf8_pass_through() -> None:
    assert read_all(b"\x00\xff\xfe\r\n\x00\n") == [b"\x00\xff\xfe\r", b"\x00"]


def test_reader_discards_oversize_line_and_continues() -> None:
    long = b"BLAH_JOB_SUBMIT 3 " + b"y" * 5000
    got = read_all(long + b"\r\nBLAH_PING 4 kubernetes\r\n", max_line=1000, chunk=300)
    assert got == [OversizeLine(len(long) + 1), b"BLAH_PING 4 kubernetes\r"]


def test_reader_oversize_line_keeps_escape_state_across_discard() -> None:
    # An odd backslash run spanning the discard point still escapes the LF.
    long = b"a" * 50 + b"\\" * 41 + b"\nrest\n" + b"ok\n"
    got = read_all(long, max_line=20, chunk=10)
    assert got == [OversizeLine(50 + 41 + 1 + 4), b"ok"]


def test_reader_oversize_at_eof() -> None:
    assert read_all(b"z" * 100, max_line=10) == [OversizeLine(100)]


@FAST
@given(st.lists(st.binary(max_size=80).map(lambda b: b.replace(b"\n", b"")), max_size=8),
       st.integers(min_value=1, max_value=50))
def test_reader_frames_crlf_terminated_lines(lines: list[bytes], chunk: int) -> None:
    # A CR always sits between a trailing backslash and the LF, so every LF ends a line.
    data = b"".join(line + b"\r\n" for line in lines)
    assert read_all(data, chunk=chunk) == [line + b"\r" for line in lines]


@FAST
@given(st.binary(max_size=400), st.integers(min_value=1, max_value=64),
       st.integers(min_value=1, max_value=60))
def test_reader_matches_reference_framing(data: bytes, chunk: int, max_line: int) -> None:
    expected: list[bytes | OversizeLine] = []
    for line in _reference_frames(data):
        expected.append(OversizeLine(len(line)) if len(line) > max_line else line)
    assert read_all(data, max_line=max_line, chunk=chunk) == expected


def _reference_frames(data: bytes) -> list[bytes]:
    """Byte-at-a-time framing straight from the §2.4 pseudo-code."""
    frames, current, escaped = [], bytearray(), False
    for b in data:
        if escaped:
            escaped = False
        elif b == 0x5C:
            escaped = True
        elif b == 0x0A:
            frames.append(bytes(current))
            current.clear()
            continue
        current.append(b)
    if current:
        frames.append(bytes(current))
    return frames
