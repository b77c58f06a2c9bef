"""kgahp.kube.jsonio reads and writes the JSON the API server exchanges exactly as the standard
library did, and splits a watch stream into its events however the stream is cut."""

from __future__ import annotations

import dataclasses
import datetime
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kgahp.kube import jsonio


@dataclasses.dataclass
class _Point:
    x: int
    y: int


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20)


@given(_json_values)
def test_round_trip_matches_the_standard_library(value: object) -> None:
    encoded = jsonio.dumps(value)
    assert json.loads(encoded) == value
    assert jsonio.loads(encoded) == value
    assert jsonio.loads(json.dumps(value).encode()) == value


def test_invalid_utf8_in_a_watch_event_is_replaced_not_refused() -> None:
    assert list(jsonio.json_lines([b'{"m":"a\xffb"}\n'])) == [{"m": "a\ufffdb"}]


def test_an_answer_in_utf16_is_read_and_invalid_utf8_refused() -> None:
    assert jsonio.loads('{"m": "x"}'.encode("utf-16")) == {"m": "x"}
    with pytest.raises(ValueError):
        jsonio.loads(b'{"m":"a\xffb"}')


def test_not_json_raises_value_error() -> None:
    with pytest.raises(ValueError):
        jsonio.loads(b'{"type": "ADDED", "object": {')


def test_values_orjson_cannot_encode_fall_back() -> None:
    assert json.loads(jsonio.dumps({"n": 2**70, 3: "x"})) == {"n": 2**70, "3": "x"}
    for unencodable in (object(), datetime.datetime(2026, 1, 1), _Point(1, 2)):
        with pytest.raises(TypeError):       # refused, as the standard library refuses them
            jsonio.dumps({"x": unencodable})


def test_watch_lines_across_chunk_boundaries() -> None:
    events = [{"type": "ADDED", "object": {"metadata": {"name": f"p{i}"}}} for i in range(5)]
    stream = b"".join(json.dumps(e).encode() + b"\n" for e in events) + b"\n  \n"
    for cut in (1, 7, 50, len(stream)):
        chunks = [stream[i:i + cut] for i in range(0, len(stream), cut)]
        assert list(jsonio.json_lines(chunks)) == events


def test_a_last_event_cut_short_is_dropped() -> None:
    assert list(jsonio.json_lines([b'{"a":1}\n{"b":'])) == [{"a": 1}]
