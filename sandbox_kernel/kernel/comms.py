"""Widgets of sandbox code: comm messages between the notebook and the context's kernel.

Two comm id spaces live in one kernel: this process's own (the `%sbx browse` widgets, in
the kernel's comm manager) and the sandbox's. A comm message from the notebook goes to the
sandbox only for a sandbox comm (or a comm_open for a target this process does not have);
a comm message from the sandbox is only ever published to the notebook, never handed to
this process's comm manager, and only for comms the sandbox owns: a sandbox comm_open that
names a local comm's id is refused. Everything the sandbox says of a widget passes through
`widget_data_from_sandbox`, which also translates the message ids an Output widget names.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import uuid
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from ..client.messages import MessageSocket
from .sanitize import clean_html, safe_bundle

log = logging.getLogger(__name__)

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
MODEL_REFERENCE = "IPY_MODEL_"
HTML_MODELS = frozenset({"HTMLModel", "HTMLMathModel"})
HTML_KEYS = frozenset({"description", "tooltip"})
REMEMBERED_MESSAGES = 4096
NO_COMMS_NOTE = (
    "Widgets made in the sandbox show as text here: this sandbox server does not relay "
    "their messages (it lacks the 'comms' extension)."
)
DEBUG_REPLY_SECONDS = 30.0
Send = Callable[..., None]
"""Publishes one iopub message: `send(msg_type, content, parent, buffers=, metadata=)`."""


class SandboxComms:
    """The sandbox's comms as the notebook sees them, and the context's message socket."""

    def __init__(
        self,
        send: Send,
        local_comm_ids: Callable[[], set[str]],
        *,
        trusted: Callable[[], bool] = lambda: False,
    ) -> None:
        self.send = send
        self.local_comm_ids = local_comm_ids
        self.trusted = trusted
        self.comms: dict[str, str] = {}
        """Sandbox comm id -> its target name."""
        self.models: dict[str, str] = {}
        """Sandbox comm id -> its widget model name (for the state that holds HTML)."""
        self.parents: OrderedDict[str, dict[str, Any]] = OrderedDict()
        """Message id in the sandbox (an execution, a relayed request) -> the notebook's
        message that caused it: what replies are sent under and Output widgets capture."""
        self.socket: MessageSocket | None = None
        self.context_id: str | None = None
        self._reader: asyncio.Task | None = None
        self._debug_replies: dict[str, asyncio.Future] = {}
        self.on_debug_event: Callable[[dict[str, Any]], None] | None = None
        self.noted_missing = False

    # ---- the socket

    async def connect(self, context: Any, context_id: str | None) -> None:
        """Have the message socket of `context_id` open (a new context forgets old comms)."""
        if context_id is None or (context_id == self.context_id and self.socket is not None):
            return
        await self.disconnect()
        self.context_id = context_id
        self.socket = await context.open_messages_async(context_id)
        self._reader = asyncio.ensure_future(self._read(self.socket))

    async def disconnect(self) -> None:
        socket, self.socket = self.socket, None
        if self._reader is not None:
            self._reader.cancel()
            self._reader = None
        for comm_id in list(self.comms):
            self._forget(comm_id)
        if socket is not None:
            with contextlib.suppress(Exception):
                await socket.aclose()

    async def _read(self, socket: MessageSocket) -> None:
        async for message, buffers in socket.messages():
            try:
                self._relayed(message, buffers)
            except Exception:  # one bad message from the sandbox must not end the relay
                log.warning("dropped a message from the sandbox", exc_info=True)

    def _relayed(self, message: dict[str, Any], buffers: list[bytes]) -> None:
        msg_type, content = message.get("msgType"), message.get("content")
        if not isinstance(content, dict):
            return
        request_id = message.get("requestId")
        if msg_type == "debug_reply":
            future = self._debug_replies.pop(str(request_id), None)
            if future is not None and not future.done():
                future.set_result(content)
            return
        if msg_type == "debug_event":
            if self.on_debug_event is not None:
                self.on_debug_event(content)
            return
        parent = self._parent_of(message.get("parentMsgId"), request_id)
        if msg_type in ("comm_open", "comm_msg", "comm_close"):
            self.from_sandbox(msg_type, content, buffers, parent, message.get("metadata"))
        elif msg_type == "stream" and parent is not None:
            name = "stderr" if content.get("name") == "stderr" else "stdout"
            self.send("stream", {"name": name, "text": str(content.get("text", ""))}, parent)

    def _parent_of(self, sandbox_msg_id: Any, request_id: Any) -> dict[str, Any] | None:
        parent = self.parents.get(str(request_id)) if request_id else None
        if parent is None and sandbox_msg_id:
            return self.parents.get(str(sandbox_msg_id))
        if parent is not None and sandbox_msg_id:
            self._remember(str(sandbox_msg_id), parent)
        return parent

    def _remember(self, sandbox_msg_id: str, parent: dict[str, Any]) -> None:
        self.parents[sandbox_msg_id] = parent
        self.parents.move_to_end(sandbox_msg_id)
        while len(self.parents) > REMEMBERED_MESSAGES:
            self.parents.popitem(last=False)

    # ---- sandbox -> notebook

    def from_execution(self, entry: dict[str, Any], parent: dict[str, Any]) -> None:
        """A `comm` entry of the cell whose notebook message is `parent`."""
        if entry.get("parentMsgId"):
            self._remember(str(entry["parentMsgId"]), parent)
        content = entry.get("content")
        buffers = []
        for encoded in entry.get("buffers") or []:
            with contextlib.suppress(ValueError, TypeError):
                buffers.append(base64.b64decode(encoded, validate=True))
        if isinstance(content, dict):
            msg_type = str(entry.get("msgType"))
            self.from_sandbox(msg_type, content, buffers, parent, entry.get("metadata"))

    def from_sandbox(
        self,
        msg_type: str,
        content: dict[str, Any],
        buffers: list[bytes],
        parent: dict[str, Any] | None,
        metadata: Any = None,
    ) -> None:
        """Publish one comm message of the sandbox, if it is the sandbox's to send, with its
        metadata (where the widget frontend reads the protocol version, or refuses the model)."""
        comm_id = content.get("comm_id")
        if not isinstance(comm_id, str) or not comm_id:
            return
        if msg_type == "comm_open":
            if comm_id in self.local_comm_ids() or comm_id in self.comms:
                log.warning("refused a sandbox comm_open for comm id %s, already in use", comm_id)
                return
            target = content.get("target_name")
            self.comms[comm_id] = str(target)
            state = (content.get("data") or {}).get("state") or {}
            self.models[comm_id] = str(state.get("_model_name", ""))
        elif comm_id not in self.comms:
            return  # not a comm of the sandbox: a local widget is never the sandbox's to drive
        published = {**content, "data": self.widget_data_from_sandbox(comm_id, content)}
        if msg_type == "comm_open":
            published["target_name"] = self.comms[comm_id]
        if msg_type == "comm_close":
            self._forget(comm_id, publish=False)
        metadata = metadata if isinstance(metadata, dict) else {}
        self.send(msg_type, published, parent, buffers=buffers, metadata=metadata)

    def widget_data_from_sandbox(self, comm_id: str, content: dict[str, Any]) -> dict[str, Any]:
        """The one gate for widget data from the sandbox: message ids translated to the
        notebook's, references to models that are not the sandbox's cut, and HTML cleaned
        (unless outputs are trusted)."""
        data = content.get("data")
        if not isinstance(data, dict):
            return {}
        state = data.get("state")
        if not isinstance(state, dict):
            return data
        clean: dict[str, Any] = {}
        for key, value in state.items():
            if key == "msg_id":
                value = self._notebook_msg_id(value)
            elif key == "outputs" and isinstance(value, list) and not self.trusted():
                value = [_safe_output(output) for output in value if isinstance(output, dict)]
            elif isinstance(value, str) and not self.trusted() and self._holds_html(comm_id, key):
                value = clean_html(value)
            clean[key] = self._only_sandbox_models(value)
        return {**data, "state": clean}

    def _holds_html(self, comm_id: str, key: str) -> bool:
        return key in HTML_KEYS or (key == "value" and self.models.get(comm_id) in HTML_MODELS)

    def _notebook_msg_id(self, value: Any) -> str:
        """The notebook's id for a message id of the sandbox; "" for one it never said."""
        parent = self.parents.get(value) if isinstance(value, str) and value else None
        return "" if parent is None else str(parent["header"]["msg_id"])

    def _only_sandbox_models(self, value: Any) -> Any:
        if isinstance(value, str) and value.startswith(MODEL_REFERENCE):
            return value if value[len(MODEL_REFERENCE) :] in self.comms else None
        if isinstance(value, list):
            return [self._only_sandbox_models(item) for item in value if not self._foreign(item)]
        if isinstance(value, dict):
            return {key: self._only_sandbox_models(item) for key, item in value.items()}
        return value

    def _foreign(self, value: Any) -> bool:
        """True for a reference to a model that is not the sandbox's."""
        return (
            isinstance(value, str)
            and value.startswith(MODEL_REFERENCE)
            and (value[len(MODEL_REFERENCE) :] not in self.comms)
        )

    def view_bundle(self, bundle: dict[str, Any]) -> dict[str, Any]:
        """A result's bundle: a widget view only of a sandbox widget, and none (its text
        shows, with a note once) where the server does not relay comms."""
        view = bundle.get(WIDGET_VIEW)
        if view is None:
            return bundle
        model_id = view.get("model_id") if isinstance(view, dict) else None
        if self.socket is not None and model_id in self.comms:
            return bundle
        return {mime: value for mime, value in bundle.items() if mime != WIDGET_VIEW}

    def _forget(self, comm_id: str, *, publish: bool = True) -> None:
        self.comms.pop(comm_id, None)
        self.models.pop(comm_id, None)
        if publish:
            self.send("comm_close", {"comm_id": comm_id, "data": {}}, None)

    # ---- notebook -> sandbox

    def is_for_sandbox(self, msg: dict[str, Any], local_targets: set[str]) -> bool:
        """True for a notebook comm message that belongs to the sandbox."""
        content = msg.get("content") or {}
        comm_id = content.get("comm_id")
        if comm_id in self.comms:
            return True
        if msg["header"]["msg_type"] != "comm_open" or self.socket is None:
            return False
        return comm_id not in self.local_comm_ids() and content.get("target_name") not in (
            local_targets
        )

    async def to_sandbox(self, msg: dict[str, Any]) -> None:
        """Forward a notebook comm message (its buffers as they are) to the sandbox."""
        if self.socket is None:
            return
        msg_type, content = msg["header"]["msg_type"], msg["content"]
        if msg_type == "comm_open":
            self.comms[content["comm_id"]] = str(content.get("target_name"))
        elif msg_type == "comm_close":
            self.comms.pop(content.get("comm_id"), None)
        request_id = str(msg["header"]["msg_id"])
        self._remember(request_id, msg)
        buffers = [bytes(buffer) for buffer in msg.get("buffers") or []]
        await self.socket.send(
            "shell",
            msg_type,
            content,
            request_id=request_id,
            metadata=msg.get("metadata"),
            buffers=buffers,
        )

    def comm_info(self, target_name: str | None) -> dict[str, dict[str, str]]:
        """The sandbox's comms for a comm_info_reply."""
        return {
            comm_id: {"target_name": target}
            for comm_id, target in self.comms.items()
            if target_name is None or target == target_name
        }

    # ---- the debugger

    async def debug_request(self, request: dict[str, Any]) -> dict[str, Any]:
        """Send a DAP request to the context kernel's control channel; its reply."""
        if self.socket is None:
            raise RuntimeError("no message socket")
        request_id = uuid.uuid4().hex
        future = asyncio.get_running_loop().create_future()
        self._debug_replies[request_id] = future
        try:
            await self.socket.send("control", "debug_request", request, request_id=request_id)
            return await asyncio.wait_for(future, DEBUG_REPLY_SECONDS)
        finally:
            self._debug_replies.pop(request_id, None)


def _safe_output(output: dict[str, Any]) -> dict[str, Any]:
    """One output of an Output widget's state, its bundle cleaned."""
    if isinstance(output.get("data"), dict):
        return {**output, "data": safe_bundle(output["data"])}
    return output
