"""The frames of a context's message socket: one Jupyter message and its binary buffers.

A message without buffers is a text frame, its JSON. One with buffers is a binary frame:
a 4-byte big-endian count N of parts, N 4-byte big-endian offsets (where each part starts),
then the parts: the message's JSON (UTF-8) first, its buffers after it, byte for byte.
"""

from __future__ import annotations

import itertools
import json
import struct
from collections.abc import Sequence
from typing import Any

MAX_PARTS = 1024


class FrameError(ValueError):
    """A frame that is not a message: the sender's fault, one line saying why."""


def encode_frame(message: dict[str, Any], buffers: Sequence[bytes] = ()) -> str | bytes:
    """The frame that carries `message` with `buffers` (a text frame when there are none)."""
    text = json.dumps(message)
    if not buffers:
        return text
    parts = [text.encode(), *(bytes(buffer) for buffer in buffers)]
    offset = 4 + 4 * len(parts)
    offsets = []
    for part in parts:
        offsets.append(offset)
        offset += len(part)
    return struct.pack(f">I{len(parts)}I", len(parts), *offsets) + b"".join(parts)


def decode_frame(frame: str | bytes) -> tuple[dict[str, Any], list[bytes]]:
    """The message and buffers a frame carries."""
    if isinstance(frame, str):
        return _message(frame), []
    if len(frame) < 8:
        raise FrameError("a binary frame shorter than its header")
    (count,) = struct.unpack_from(">I", frame)
    if not 1 <= count <= MAX_PARTS or len(frame) < 4 + 4 * count:
        raise FrameError(f"a binary frame with {count} parts")
    offsets = [*struct.unpack_from(f">{count}I", frame, 4), len(frame)]
    if offsets[0] != 4 + 4 * count or any(a > b for a, b in itertools.pairwise(offsets)):
        raise FrameError("a binary frame whose offsets are out of order")
    parts = [frame[start:end] for start, end in itertools.pairwise(offsets)]
    try:
        text = parts[0].decode()
    except UnicodeDecodeError:
        raise FrameError("a binary frame whose message is not UTF-8") from None
    return _message(text), parts[1:]


def _message(text: str) -> dict[str, Any]:
    try:
        message = json.loads(text)
    except ValueError:
        raise FrameError("a frame that is not JSON") from None
    if not isinstance(message, dict):
        raise FrameError("a frame that is not a JSON object")
    return message
