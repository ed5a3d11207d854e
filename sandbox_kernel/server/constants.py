"""Values the embedded server's modules share: the sandbox's home, defaults, limits, extensions."""

from __future__ import annotations

SERVER_NAME = "sandbox-kernel"
"""What `health` names the server (the cloud's answer has no `server`)."""

HOME = "/home/user"
"""The sandbox user's home: the default cwd of contexts and commands, where paths start."""

DEFAULT_TIMEOUT_SECONDS = 30
"""How long an execution or a command may run when its request does not say (the cloud caps a
synchronous execution at 30 s)."""

MIB = 2**20
DEFAULT_UPLOAD_LIMIT = 100 * MIB
"""The largest upload a server accepts unless told otherwise (the cloud's limit)."""
MULTIPART_OVERHEAD_BYTES = MIB
"""How far a multipart upload's declared length may pass the limit: its headers and fields."""
UPLOAD_FIELD_LIMIT = 64 * 1024
"""The largest form field (such as `path`) of a multipart upload."""
MAX_INLINE_READ = 64 * MIB
"""The largest file `GET /files` returns in JSON; larger ones go through the download."""

EXTENSIONS = (
    "stream",
    "socket",
    "interrupt",
    "restart",
    "stdin",
    "complete",
    "inspect",
    "reply",
    "comms",
    "debug",
    "rawUpload",
)
"""The protocol extensions (PROTOCOL.md) a server offers unless started without them."""
