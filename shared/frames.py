"""Keep the AMQP connection alive when a delivery's header frame is malformed.

RabbitMQ passes on whatever a publisher put in a message's properties. pamqp 4.0.1 (the
frame codec under aio-pika) raises on two things it cannot decode there: a short string
(``content_type``, ``message_id``, ``correlation_id``..., a header's name) that is not
UTF-8, and a ``timestamp`` past year 9999. It raises inside aiormq's frame reader, which
closes the whole connection: every consumer of the process stops, its in-flight
messages are cancelled, and the message comes back and closes the connection again
until the queue's delivery limit dead-letters it, unread.

:func:`tolerate_malformed_frames` makes those values readable instead: such a string is
decoded with U+FFFD for the bytes that are not UTF-8, such a timestamp is read as none.
The message then reaches our consumers, which dead-letter it with a reason like any
other bad input. Long strings that are not UTF-8 pamqp already returns as bytes.
"""

from __future__ import annotations

import struct
from typing import Any

_PATCHED = "_lectern_tolerant"


def tolerate_malformed_frames() -> None:
    """Patch pamqp's decoder once per process (idempotent); see the module docstring."""
    from pamqp import common, decode

    if getattr(decode, _PATCHED, False):
        return
    strict_short_str = decode.short_str
    strict_timestamp = decode.timestamp

    def short_str(value: bytes) -> tuple[int, Any]:
        try:
            return strict_short_str(value)
        except UnicodeDecodeError:
            length = value[0]
            return length + 1, value[1 : length + 1].decode("utf-8", errors="replace")

    def timestamp(value: bytes) -> tuple[int, Any]:
        try:
            return strict_timestamp(value)
        except (ValueError, OverflowError, OSError):
            return 8, None

    def field_table(value: bytes) -> tuple[int, Any]:
        # pamqp's own, but a key that is not UTF-8 is decoded with replacements
        try:
            length = common.Struct.integer.unpack(value[0:4])[0]
            offset, data, end = 4, {}, 4 + length
            if end > len(value):
                raise ValueError("Field table length exceeds available data")
            while offset < end:
                key_length = common.Struct.byte.unpack_from(value, offset)[0]
                offset += 1
                if offset + key_length > end:
                    raise ValueError("Field table key length exceeds data")
                key = value[offset : offset + key_length].decode("utf-8", errors="replace")
                offset += key_length
                consumed, result = decode.embedded_value(value[offset:])
                offset += consumed
                data[key] = result
            return end, data
        except (struct.error, TypeError) as err:
            raise ValueError("Could not unpack data") from err

    decode.short_str = short_str
    decode.timestamp = timestamp
    decode.field_table = field_table
    decode.METHODS.update({"shortstr": short_str, "timestamp": timestamp, "table": field_table})
    decode.TABLE_MAPPING.update({b"T": timestamp, b"F": field_table})
    setattr(decode, _PATCHED, True)
