"""Request bodies as their senders compress them: gzip, deflate, snappy (block or framed).

Every decompression is bounded, so a small compressed body cannot expand past `limit`
bytes in memory (a "zip bomb" costs the sender a 413-style refusal, not the server).
"""

from __future__ import annotations

import zlib

import cramjam


class BodyError(ValueError):
    """The body cannot be decoded as its headers say; `too_large` when over the limit."""

    def __init__(self, message: str, too_large: bool = False) -> None:
        super().__init__(message)
        self.too_large = too_large


def decode(data: bytes, content_encoding: str | None, limit: int) -> bytes:
    """`data` with its Content-Encoding undone (identity, gzip, deflate, snappy)."""
    encoding = (content_encoding or "identity").strip().lower()
    if encoding in ("", "identity"):
        return data
    if encoding in ("gzip", "x-gzip"):
        return inflate(data, limit, wbits=16 + zlib.MAX_WBITS)
    if encoding == "deflate":
        return inflate(data, limit, wbits=zlib.MAX_WBITS)
    if encoding in ("snappy", "x-snappy-framed"):
        return unsnappy(data, limit)
    raise BodyError(f"Content-Encoding {content_encoding!r} is not supported")


def inflate(data: bytes, limit: int, wbits: int) -> bytes:
    """zlib/gzip-decompress at most `limit` bytes; BodyError if corrupt or larger."""
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error as exc:
        raise BodyError(f"The body is not valid compressed data: {exc}") from None
    if len(out) > limit:
        raise BodyError(f"The body is larger than {limit} bytes uncompressed", too_large=True)
    if not inflater.eof:
        raise BodyError("The compressed body is truncated")
    return out


def unsnappy(data: bytes, limit: int) -> bytes:
    """Snappy, block format (Loki, Prometheus) or framed (starts with the stream id)."""
    if data.startswith(b"\xff\x06\x00\x00sNaPpY"):
        try:
            out = bytes(cramjam.snappy.decompress(data))
        except cramjam.DecompressionError as exc:
            raise BodyError(f"The body is not valid snappy data: {exc}") from None
    else:
        size, _ = _varint_prefix(data)
        if size > limit:
            raise BodyError(f"The body is larger than {limit} bytes uncompressed", too_large=True)
        try:
            out = bytes(cramjam.snappy.decompress_raw(data))
        except cramjam.DecompressionError as exc:
            raise BodyError(f"The body is not valid snappy data: {exc}") from None
    if len(out) > limit:
        raise BodyError(f"The body is larger than {limit} bytes uncompressed", too_large=True)
    return out


def _varint_prefix(data: bytes) -> tuple[int, int]:
    # The block format opens with the uncompressed length: checked before inflating.
    value = shift = 0
    for pos, byte in enumerate(data[:10]):
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos + 1
        shift += 7
    raise BodyError("The body is not valid snappy data: bad length prefix")
