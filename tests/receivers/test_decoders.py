"""The pure decoders: tables of known inputs, and hypothesis properties over any input."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.pipeline.intake import Invalid
from app.receivers import bulk, loki, otlp
from app.receivers import protowire as pw
from app.receivers.framing import BadFrame, Framer, split_body

messages = st.lists(
    st.binary(min_size=1, max_size=200).filter(lambda b: b.strip(b"\r\n\x00 ") == b), max_size=20
)


@pytest.mark.parametrize(
    ("body", "frames"),
    [
        (b"5 hello6 world!", [b"hello", b"world!"]),
        (b"5 hello\n6 world!\n", [b"hello", b"world!"]),
        (b"5 hello99 short", [b"hello", BadFrame("frame cut short: 5 of 99 bytes")]),
        (b"5 helloxx yy\n3 abc", [b"hello", BadFrame("malformed octet count b'xx'"), b"abc"]),
        (b"", []),
    ],
)
def test_octet_counted_bodies(body, frames):
    assert split_body(body) == frames


def test_oversized_frame_is_skipped_by_its_count():
    body = b"3 abc" + b"20 " + b"x" * 20 + b"3 def"
    assert split_body(body, limit=10) == [
        b"abc",
        BadFrame("frame of 20 bytes is larger than the limit of 10"),
        b"def",
    ]


@given(messages, st.lists(st.integers(1, 50), min_size=1))
def test_octet_framing_survives_any_chunking(frames, cuts):
    data = b"".join(b"%d %s" % (len(f), f) for f in frames)
    framer, out, pos, i = Framer(), [], 0, 0
    while pos < len(data):
        out += framer.feed(data[pos : pos + cuts[i % len(cuts)]])
        pos, i = pos + cuts[i % len(cuts)], i + 1
    assert out + framer.finish() == frames


lines = st.binary(max_size=100).map(
    lambda b: b"<" + b.replace(b"\n", b"").replace(b"\x00", b"") + b">"
)


@given(st.lists(lines, max_size=20))
def test_newline_framing_round_trips(lines):
    framer = Framer()
    assert framer.feed(b"".join(line + b"\n" for line in lines)) + framer.finish() == lines


@given(st.binary(max_size=500))
def test_framer_takes_any_bytes(data):
    framer = Framer(limit=64)
    for frame in framer.feed(data) + framer.finish():
        assert isinstance(frame, BadFrame) or len(frame) <= 64


@given(
    st.lists(
        st.tuples(
            st.integers(1, 2**29), st.one_of(st.integers(0, 2**64 - 1), st.binary(max_size=50))
        )
    )
)
def test_wire_fields_round_trip(pairs):
    data = b"".join(pw.encode_field(n, v) for n, v in pairs)
    assert [(n, v) for n, _, v in pw.fields(data)] == pairs


@given(st.binary(max_size=300))
def test_loki_protobuf_never_raises_on_garbage(data):
    for item in loki.decode_protobuf(data):
        assert isinstance(item, (dict, Invalid))


@given(st.binary(max_size=300))
def test_otlp_protobuf_garbage_is_a_request_error_or_items(data):
    try:
        items, _ = otlp.decode_protobuf(data)
    except otlp.RequestError:
        return
    assert all(isinstance(i, dict) for i in items)


@pytest.mark.parametrize(
    ("text", "labels"),
    [
        ("{}", {}),
        ('{app="web"}', {"app": "web"}),
        ('{app="web", host="h-1"}', {"app": "web", "host": "h-1"}),
        (r'{msg="say \"hi\"\n", path="C:\\x"}', {"msg": 'say "hi"\n', "path": "C:\\x"}),
    ],
)
def test_loki_labels(text, labels):
    assert loki.parse_labels(text) == labels


@pytest.mark.parametrize("text", ["app=web", "{app=web}", '{app="web" host="x"}', '{="x"}'])
def test_loki_bad_labels(text):
    with pytest.raises(ValueError, match="not a"):
        loki.parse_labels(text)


@given(
    st.dictionaries(st.from_regex(r"[a-z_][a-z0-9_]{0,10}", fullmatch=True), st.text(max_size=20))
)
def test_loki_labels_round_trip(labels):
    def quote(value: str) -> str:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

    text = "{" + ", ".join(f'{k}="{quote(v)}"' for k, v in labels.items()) + "}"
    assert loki.parse_labels(text) == labels


@pytest.mark.parametrize(
    ("doc", "name", "value", "left"),
    [
        ({"log.level": "warn"}, "log.level", "warn", {}),
        ({"log": {"level": "warn", "x": 1}}, "log.level", "warn", {"log": {"x": 1}}),
        ({"log": {"level": "warn"}}, "log.level", "warn", {}),
        ({"log": "a line"}, "log.level", None, {"log": "a line"}),
        ({"host": {"name": "h"}}, "host", None, {"host": {"name": "h"}}),
    ],
)
def test_bulk_take(doc, name, value, left):
    assert bulk.take(doc, name) == value
    assert doc == left


@pytest.mark.parametrize(
    ("number", "text", "level"),
    [
        (1, "", "TRACE"),
        (5, "", "DEBUG"),
        (9, "", "INFO"),
        (13, "", "WARN"),
        (17, "", "ERROR"),
        (21, "", "CRITICAL"),
        (24, "", "CRITICAL"),
        (0, "warning", "WARN"),
        (0, "", "INFO"),
        (0, "x", "INFO"),
    ],
)
def test_otlp_severity(number, text, level):
    assert otlp.level(number, text) == level
