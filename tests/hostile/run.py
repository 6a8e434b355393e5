"""One hostile request: its headers (honest or not), sending it, and what its answer
acknowledges; the ledger of every valid log acknowledged, checked against the database."""

from __future__ import annotations

import re
import uuid
from collections import Counter
from dataclasses import dataclass, field

import orjson
import redis
from sqlalchemy import text

from tasks.drain import drain_stream
from tests.hostile import client
from tests.hostile.payloads import Built, compress, gzip_bomb

INGEST, READ, ADMIN = "ingest-key-" + "i" * 16, "read-key-" + "r" * 16, "admin-key-" + "a" * 16
KEY_SETTINGS = {"ingest_keys": INGEST, "read_keys": READ, "admin_keys": ADMIN}

# How the key is presented: a valid ingest (or admin) key, or not.
GOOD_AUTH = {
    "bearer": (b"Authorization", b"Bearer " + INGEST.encode()),
    "x-api-key-admin": (b"X-API-Key", ADMIN.encode()),
    "basic-password": (
        b"Authorization",
        b"Basic " + __import__("base64").b64encode(b"x:" + INGEST.encode()),
    ),
    "basic-user": (
        b"Authorization",
        b"Basic " + __import__("base64").b64encode(INGEST.encode() + b":"),
    ),
}
BAD_AUTH = {
    "none": None,
    "read-scope": (b"Authorization", b"Bearer " + READ.encode()),
    "wrong-key": (b"Authorization", b"Bearer " + b"w" * 32),
    "basic-garbage": (b"Authorization", b"Basic !!!not base64\xff"),
    "bearer-nul": (b"Authorization", b"Bearer " + INGEST.encode() + b"\x00"),
}
AUTHS = (*GOOD_AUTH, *GOOD_AUTH, *GOOD_AUTH, *BAD_AUTH)

# Header modes. "clean" ones must not change what the body means.
CLEAN = ("clean", "idempotency", "idempotency-retry", "charset-param", "chunked")
HEADER_NOISE = (
    "header-cr",
    "header-nul",
    "header-obs-fold",
    "header-oversized",
    "header-many",
    "header-lf",
)
BAD_ENCODING = ("bad-encoding", "gzip-bomb", "truncated-gzip")
TAINTED = (
    "cl-short",
    "cl-long",
    "cl-garbage",
    "cl-two",
    "header-injected-cl",
    "chunked-bad",
    "idempotency-bad",
)
MODES = ("clean",) * 12 + CLEAN + HEADER_NOISE + BAD_ENCODING + TAINTED

# Header noise a server may parse into other header lines (Python's http.server, under
# werkzeug's dev server, ends a header line at a bare CR): the body it reads may then
# not be the one sent, so these too acknowledge nothing the ledger could attribute.
TAINTED += ("header-cr", "header-lf", "header-obs-fold")
MUST_ANSWER = set(CLEAN) | {"header-cr", "header-nul", "header-obs-fold", "idempotency-bad"}


@dataclass
class Ledger:
    """What the run sent and what the answers acknowledged."""

    requests: int = 0
    statuses: Counter = field(default_factory=Counter)
    acked: dict[str, str] = field(default_factory=dict)  # marker -> the request, told
    acked_stream_ids: set[str] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)

    def problem(self, text: str) -> None:
        if len(self.problems) < 200:
            self.problems.append(text)


def _chunked(body: bytes) -> bytes:
    out, step = [], 65_536
    for i in range(0, len(body), step):
        piece = body[i : i + step]
        out.append(b"%x\r\n%s\r\n" % (len(piece), piece))
    return b"".join(out) + b"0\r\n\r\n"


def _set_encoding(headers: list, value: bytes) -> list:
    return [h for h in headers if h[0] != b"Content-Encoding"] + [(b"Content-Encoding", value)]


BAD_ENCODINGS = (b"gzip", b"br", b"gzip, gzip", b"\xff\xfe", b"snappy")
# Mode -> (headers, body, the built request) -> (headers, body).
NOISE = {
    "idempotency": lambda h, b, _: ([*h, (b"Idempotency-Key", uuid.uuid4().hex.encode())], b),
    "idempotency-bad": lambda h, b, _: ([*h, (b"Idempotency-Key", b"k\xff\x01" * 100)], b),
    "bad-encoding": lambda h, b, _: (_set_encoding(h, BAD_ENCODINGS[len(b) % 5]), b),
    "gzip-bomb": lambda h, b, _: (_set_encoding(h, b"gzip"), gzip_bomb()),
    "truncated-gzip": lambda h, b, built: (
        _set_encoding(h, b"gzip"),
        compress(built.body, "gzip")[: max(1, len(b) // 2)],
    ),
    "header-cr": lambda h, b, _: ([*h, (b"X-Hostile", b"a\rb")], b),
    "header-lf": lambda h, b, _: ([*h, (b"X-Hostile", b"a\nX-Injected: yes")], b),
    "header-nul": lambda h, b, _: ([*h, (b"X-Hostile", b"a\x00b")], b),
    "header-obs-fold": lambda h, b, _: ([*h, (b"X-Hostile", b"a\r\n\tfolded")], b),
    "header-oversized": lambda h, b, _: ([*h, (b"X-Hostile", b"h" * 70000)], b),
    "header-many": lambda h, b, _: (h + [(b"X-Hostile-%d" % i, b"v") for i in range(300)], b),
    "header-injected-cl": lambda h, b, _: ([*h, (b"X-Hostile", b"a\r\nContent-Length: 3")], b),
}
NOISE["idempotency-retry"] = NOISE["idempotency"]
# Mode -> (body) -> (framing headers, body on the wire).
FRAMING = {
    "chunked": lambda b: ([(b"Transfer-Encoding", b"chunked")], _chunked(b)),
    "chunked-bad": lambda b: ([(b"Transfer-Encoding", b"chunked")], b"zz\r\n" + b[:100]),
    "cl-short": lambda b: ([(b"Content-Length", b"%d" % max(0, len(b) - 7))], b),
    "cl-long": lambda b: ([(b"Content-Length", b"%d" % (len(b) + 100))], b),
    "cl-garbage": lambda b: ([(b"Content-Length", (b"12abc", b"-1", b"1e3", b" ")[len(b) % 4])], b),
    "cl-two": lambda b: ([(b"Content-Length", b"%d" % len(b)), (b"Content-Length", b"1")], b),
}


def headers_for(built: Built, encoding: str, mode: str, auth: str, port: int):
    """(headers, body on the wire, tainted): tainted when the headers change which bytes
    the server reads as the body, so no item's acknowledgment can be attributed."""
    body = compress(built.body, encoding)
    content_type = built.content_type.encode()
    if mode == "charset-param":
        content_type += b"; charset=utf-8; boundary=\xff"
    headers = [(b"Host", b"127.0.0.1:%d" % port), (b"Connection", b"close")]
    headers.append((b"Content-Type", content_type))
    if encoding != "identity":
        headers.append((b"Content-Encoding", encoding.encode()))
    presented = (GOOD_AUTH | BAD_AUTH)[auth]
    if presented:
        headers.append(presented)
    headers += built.extra_headers
    if built.face == "heroku":
        headers.append((b"Logplex-Frame-Id", uuid.uuid4().hex.encode()))
    if mode in NOISE:
        headers, body = NOISE[mode](headers, body, built)
    framing, body = FRAMING.get(mode, lambda b: ([(b"Content-Length", b"%d" % len(b))], b))(body)
    return headers + framing, body, mode in TAINTED


def acked(built: Built, answer: client.Answer, ledger: Ledger) -> dict[int, str]:
    """The valid items this answer acknowledges (index -> marker); a valid item it names
    as refused is a neighbour failed, recorded as a problem."""
    status, body, face = answer.status, answer.body, built.face
    named: set[int] = set()
    ok = False
    if face.startswith(("fast-", "sync-")):
        if status in (200, 201, 202, 422) and body.startswith(b"{"):
            data = orjson.loads(body)
            named = {r["index"] for r in data.get("rejected") or [] if "index" in r}
            ok = status in (201, 202)
            if ok and status == 202:
                order = [i for i in range(built.count) if i not in named]
                ids = dict(zip(order, data["ids"], strict=True))
                ledger.acked_stream_ids.update(ids[i] for i in built.valid if i in ids)
    elif face == "bulk":
        if status == 200:
            items = orjson.loads(body)["items"]
            answers = [next(iter(item.values())) for item in items]
            named = {i for i, a in enumerate(answers) if a["status"] != 201}
            ok = True
    elif face == "heroku":
        # A count mismatch names no frame: which were found is not said, so none is known.
        mismatch = b"Logplex-Msg-Count is" in body
        ok = status == 204 or (status == 400 and b"frames were accepted" in body and not mismatch)
        named = {int(n) for n in re.findall(rb"frame (\d+):", body)}
    elif face.startswith("loki"):
        ok = status == 204 or (status == 400 and b"the others were accepted" in body)
        named = {int(n) for n in re.findall(rb"entry (\d+):", body)}
    elif face.startswith("otlp"):
        ok = status == 200
        named = {int(n) for n in re.findall(rb"record (\d+):", body)}
    wrongly = sorted(i for i in built.valid if i in named)
    if wrongly:
        ledger.problem(f"{face}: valid items {wrongly} refused ({status}): {body[:300]!r}")
    return {i: m for i, m in built.valid.items() if ok and i not in named}


def must_ack(built: Built, mode: str, auth: str, limit: int) -> bool:
    """Whether every valid item of this request has to be acknowledged."""
    return (
        mode in CLEAN
        and auth in GOOD_AUTH
        and built.decodable
        and max(len(built.body), built.inflated) <= limit
        and bool(built.valid)
    )


def send(
    ledger: Ledger, port: int, built: Built, encoding: str, mode: str, auth: str, limit: int
) -> None:
    """Send one request (two for an idempotency retry) and account for its answer."""
    if mode == "idempotency-retry" and not built.face.startswith(("fast-", "sync-", "heroku")):
        mode = "idempotency"  # only these faces promise a retry is taken once
    headers, body, tainted = headers_for(built, encoding, mode, auth, port)
    method = "PUT" if built.face == "bulk" and len(body) % 2 else "POST"
    head = client.head(method, built.path, headers)
    answers = []
    for _ in range(2 if mode == "idempotency-retry" else 1):
        try:
            answers.append(client.send("127.0.0.1", port, head, body))
        except (ConnectionError, OSError) as exc:  # the server hung up without answering
            answers.append(client.Answer(0, {}, repr(exc).encode()))
        ledger.requests += 1
    for answer in answers:
        ledger.statuses[answer.status // 100 * 100] += 1
        where = f"{built.face} {mode} {auth} {encoding}"
        if answer.status >= 500:
            ledger.problem(f"{where}: {answer.status} {answer.body[:300]!r}")
        if answer.status == 0 and mode in MUST_ANSWER:
            ledger.problem(f"{where}: no answer: {answer.body[:200]!r}")
        if auth in BAD_AUTH and answer.status < 300 and answer.status:
            ledger.problem(f"{where}: {answer.status} without a valid ingest key")
    first = answers[0]
    taken = {} if tainted else acked(built, first, ledger)
    if must_ack(built, mode, auth, limit) and len(taken) != len(built.valid):
        missing = sorted(set(built.valid) - set(taken))
        ledger.problem(
            f"{built.face} {mode} {encoding}: valid items {missing} not acknowledged"
            f" ({first.status}): {first.body[:300]!r}"
        )
    if mode == "idempotency-retry" and len(answers) == 2 and first.status < 300:
        again = answers[1]
        if (again.status, again.body) != (first.status, first.body) and built.face.startswith(
            ("fast-", "sync-")
        ):
            ledger.problem(f"{built.face}: a retry answered {again.status}, not as the first")
    for mark in taken.values():
        if mark in ledger.acked:
            ledger.problem(f"{mark} acknowledged twice")
        ledger.acked[mark] = f"{built.face} {mode} {encoding} {built.items}"


def drain_all(settings, r: redis.Redis) -> None:
    """Drain with the real drain until the stream has nothing undelivered or pending."""
    quiet = 0
    while quiet < 2:
        stats = drain_stream(settings, "hostile", budget=0.5)
        quiet = quiet + 1 if not (stats.chunks or stats.lag) else 0


def check_stored(ledger: Ledger, settings, db, r: redis.Redis, run: str) -> dict:
    """Every acknowledged valid log stored exactly once; no valid log dead-lettered; no
    dead letter about anything but its own entry. Returns counts for the report."""
    db.rollback()
    rows = db.execute(
        text("SELECT message FROM logs WHERE message LIKE :p"), {"p": f"%hv-{run}-%"}
    ).scalars()
    stored = Counter(m for message in rows for m in re.findall(rf"hv-{run}-\d{{7}}!", message))
    for mark, face in ledger.acked.items():
        if stored[mark] != 1:
            ledger.problem(f"{mark} ({face}) acknowledged, stored {stored[mark]} times")
    for mark, times in stored.items():
        if times > 1:
            ledger.problem(f"{mark} stored {times} times")
    dead = r.xrange(settings.dead_letter_stream)
    for entry_id, fields in dead:
        reason = fields.get(b"reason", b"").decode("utf-8", "replace")
        stream_id = fields.get(b"stream_id", b"").decode()
        carried = b" ".join(v for k, v in fields.items() if k not in (b"reason",))
        if f"hv-{run}-".encode() in carried or stream_id in ledger.acked_stream_ids:
            ledger.problem(f"a valid log dead-lettered ({reason}): {carried[:200]!r}")
        if "delivered" in reason:
            ledger.problem(f"dead letter {entry_id} failed with its chunk: {reason}")
    return {"stored_valid": sum(stored.values()), "dead_letters": len(dead)}
