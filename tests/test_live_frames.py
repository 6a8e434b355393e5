"""Pure parts of the live send path: the WebSocket text frame (checked against wsproto, a
real client-side decoder) and the live filters as `/logs` parameters (checked against the
schema that reads them back)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from werkzeug.datastructures import MultiDict
from wsproto import ConnectionType
from wsproto.connection import Connection
from wsproto.events import TextMessage

from app.pipeline.filters import LiveFilterSchema
from app.web.live import query_params
from app.web.live_client import text_frame


def decoded(frame: bytes) -> str:
    """What a client makes of the bytes: one whole text message, or the test fails."""
    client = Connection(ConnectionType.CLIENT)
    client.receive_data(frame)
    events = list(client.events())
    assert len(events) == 1 and isinstance(events[0], TextMessage), events
    assert events[0].frame_finished and events[0].message_finished
    return events[0].data


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65_535, 65_536, 300_000])
def test_every_length_encoding_decodes(size):
    text = "x" * size
    assert decoded(text_frame(text.encode())) == text


@pytest.mark.parametrize(
    ("size", "header"),
    [
        (5, b"\x81\x05"),
        (200, b"\x81\x7e\x00\xc8"),
        (70_000, b"\x81\x7f" + (70_000).to_bytes(8, "big")),
    ],
)
def test_header_is_the_shortest_form_unmasked(size, header):
    assert text_frame(b"a" * size).startswith(header)


@given(st.text(max_size=3000))
def test_any_text_round_trips(text):
    assert decoded(text_frame(text.encode())) == text


_schema = LiveFilterSchema()


@pytest.mark.parametrize(
    "query",
    [
        {},
        {"min_level": ["WARN"]},
        {"level": ["error,debug"]},
        {"source": ["web-1", "web-2"], "application": ["billing"]},
        {"q": ['payment "card declined" -test'], "contains": ["50%_off"]},
        {"meta.user_id": ["789"], "meta.http.status": ["500"], "meta.flag": ["true"]},
        {"meta.region": ["eu"], "min_level": ["ERROR"], "source": ["a&b=c"]},
    ],
)
def test_query_params_read_back_as_the_same_filters(query):
    flt = _schema.load(query)
    assert _schema.load(MultiDict(query_params(flt)).to_dict(flat=False)) == flt
