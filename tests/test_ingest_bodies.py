"""Bodies as senders write them: gzip and deflate on the JSON API, bounded once
inflated, and lines split on \\n only (issue 9's first items)."""

from __future__ import annotations

import gzip
import zlib

import orjson
import pytest

from app.pipeline import stream
from tasks.drain import drain_stream


@pytest.mark.parametrize(
    ("encoding", "pack"), [("gzip", gzip.compress), ("deflate", zlib.compress)]
)
def test_compressed_json_body_is_accepted(encoding, pack, client, r, settings, db):
    stream.ensure_group(r, settings)
    body = pack(orjson.dumps([{"message": "zipped"}, {"message": "too"}]))
    answer = client.post(
        "/data/fast",
        data=body,
        content_type="application/json",
        headers={"Content-Encoding": encoding},
    )
    assert answer.status_code == 202, answer.json
    assert drain_stream(settings, "bodies", budget=0.3).stored == 2


def test_a_zip_bomb_is_refused_as_too_large(app, client):
    limit = app.extensions["sluice"].max_content_length
    bomb = gzip.compress(b"[" + b" " * (limit + 10) + b"]")
    assert len(bomb) < limit // 100
    answer = client.post(
        "/data/fast",
        data=bomb,
        content_type="application/json",
        headers={"Content-Encoding": "gzip"},
    )
    assert answer.status_code == 413
    assert answer.json["error"] == "body_too_large"


def test_a_corrupt_gzip_body_is_a_clear_400(client):
    answer = client.post(
        "/data/fast",
        data=b"not gzip",
        content_type="application/json",
        headers={"Content-Encoding": "gzip"},
    )
    assert answer.status_code == 400
    assert answer.json["error"] == "bad_body"


def test_lines_split_on_newline_only(client):
    text = "one\u2028still one\vstill\fone\x1cone\r\ntwo\u0085two\nthree"
    answer = client.post("/data/fast", data=text.encode(), content_type="text/plain")
    assert answer.status_code == 202, answer.json
    assert answer.json["accepted"] == 3
