"""Loki's push messages built from their definition (grafana/loki pkg/push/push.proto)
with protobuf's descriptor API: an encoder independent of Sluice's hand-written reader."""

from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, timestamp_pb2

F = descriptor_pb2.FieldDescriptorProto


def _message(file, name: str, fields: list[tuple[str, int, int, str | None, bool]]) -> None:
    msg = file.message_type.add(name=name)
    for field_name, number, kind, type_name, repeated in fields:
        field = msg.field.add(name=field_name, number=number, type=kind)
        field.label = F.LABEL_REPEATED if repeated else F.LABEL_OPTIONAL
        if type_name:
            field.type_name = type_name


def _classes() -> dict:
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(timestamp_pb2.DESCRIPTOR.serialized_pb)
    file = descriptor_pb2.FileDescriptorProto(
        name="sluice_test_push.proto", package="logproto", syntax="proto3"
    )
    file.dependency.append("google/protobuf/timestamp.proto")
    _message(file, "PushRequest", [("streams", 1, F.TYPE_MESSAGE, ".logproto.Stream", True)])
    _message(
        file,
        "Stream",
        [
            ("labels", 1, F.TYPE_STRING, None, False),
            ("entries", 2, F.TYPE_MESSAGE, ".logproto.Entry", True),
            ("hash", 3, F.TYPE_UINT64, None, False),
        ],
    )
    _message(
        file,
        "Entry",
        [
            ("timestamp", 1, F.TYPE_MESSAGE, ".google.protobuf.Timestamp", False),
            ("line", 2, F.TYPE_STRING, None, False),
            ("structuredMetadata", 3, F.TYPE_MESSAGE, ".logproto.LabelPair", True),
        ],
    )
    _message(
        file,
        "LabelPair",
        [("name", 1, F.TYPE_STRING, None, False), ("value", 2, F.TYPE_STRING, None, False)],
    )
    pool.Add(file)
    names = ("PushRequest", "Stream", "Entry", "LabelPair")
    return {
        n: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"logproto.{n}"))
        for n in names
    }


CLASSES = _classes()
PushRequest = CLASSES["PushRequest"]


def push_request(streams: list[tuple[str, list[tuple[int, str, dict]]]]) -> bytes:
    """A serialized PushRequest: [(labels, [(ns, line, structured metadata)])]."""
    request = PushRequest()
    for labels, entries in streams:
        stream = request.streams.add(labels=labels)
        for ns, line, structured in entries:
            entry = stream.entries.add(line=line)
            entry.timestamp.seconds, entry.timestamp.nanos = divmod(ns, 1_000_000_000)
            for name, value in structured.items():
                entry.structuredMetadata.add(name=name, value=value)
    return request.SerializeToString()
