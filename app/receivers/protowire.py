"""The protobuf wire format, read by hand: just enough for Loki's push message and for
splitting a request into its top-level repeated fields.

Splitting by hand is what lets a truncated body cost only the message it cuts: each
complete top-level field before the cut still decodes (a generated class's
`ParseFromString` refuses the whole body). See https://protobuf.dev/programming-guides/encoding/.
"""

from __future__ import annotations

from collections.abc import Iterator

VARINT, I64, LEN, I32 = 0, 1, 2, 5


class WireError(ValueError):
    """The bytes are not a well-formed protobuf message (truncated or corrupt)."""


def read_varint(data: bytes, pos: int) -> tuple[int, int]:
    """The varint at `pos` and the position after it."""
    value = shift = 0
    while True:
        if pos >= len(data):
            raise WireError("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift >= 70:
            raise WireError("varint longer than 10 bytes")


def fields(data: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """(field number, wire type, value) for each field: an int for varints, bytes else."""
    pos = 0
    while pos < len(data):
        key, pos = read_varint(data, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise WireError("field number 0")
        value, pos = _value(data, pos, wire)
        yield number, wire, value


def _value(data: bytes, pos: int, wire: int) -> tuple[int | bytes, int]:
    if wire == VARINT:
        return read_varint(data, pos)
    if wire == LEN:
        size, pos = read_varint(data, pos)
        end = pos + size
    elif wire == I64:
        end = pos + 8
    elif wire == I32:
        end = pos + 4
    else:
        raise WireError(f"unsupported wire type {wire}")
    if end > len(data):
        raise WireError("truncated field")
    return data[pos:end], end


def split(data: bytes, number: int) -> tuple[list[bytes], str | None]:
    """The payloads of top-level LEN field `number` up to the first damage, and a
    description of that damage (None when the whole message is well formed)."""
    found = []
    try:
        for got, wire, value in fields(data):
            if got == number:
                if wire != LEN:
                    return found, f"field {number} has wire type {wire}, not length-delimited"
                found.append(value)
    except WireError as exc:
        return found, str(exc)
    return found, None


def string(value: int | bytes) -> str:
    """A LEN field's bytes as UTF-8 text (WireError if it is not)."""
    if not isinstance(value, bytes):
        raise WireError("expected a string, got a varint")
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WireError(f"invalid UTF-8: {exc}") from None


def encode_varint(value: int) -> bytes:
    """`value` (non-negative) as a varint."""
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def encode_field(number: int, value: int | bytes | str) -> bytes:
    """One field: an int as a varint, bytes or str as length-delimited."""
    if isinstance(value, int):
        return encode_varint(number << 3 | VARINT) + encode_varint(value)
    raw = value.encode() if isinstance(value, str) else value
    return encode_varint(number << 3 | LEN) + encode_varint(len(raw)) + raw
