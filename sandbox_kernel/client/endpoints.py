"""Every endpoint of the data-plane protocol, described once as a `Call` that either sender runs."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any
from urllib.parse import quote

from .errors import SandboxError

DEFAULT_READ_TIMEOUT = 60.0
"""Seconds to wait for a reply to an ordinary call."""
REPLY_MARGIN = 30.0
"""Seconds allowed beyond a server-side timeout for the server to interrupt and answer."""
SERVER_DEFAULT_TIMEOUT = 30
"""The timeout the server applies to executions and commands sent without one."""

Progress = Callable[[int, int | None], None]
"""Called as `progress(done_bytes, total_bytes_or_None)` while a file is transferred."""


def _as_is(reply: Any) -> Any:
    return reply


@dataclass(frozen=True)
class Call:
    """One request: what to send and how to read the reply, independent of sync or async.

    `path` is relative to the sandbox (`"files"`, `""` for the sandbox itself) or absolute
    (`"/sandboxes"`). An upload sends `upload_from` as part `file` with `form` fields, or
    as the whole body when `raw_upload` (the embedded server's `rawUpload` extension); a
    download streams the body into `download_to`.
    """

    method: str
    path: str
    params: Mapping[str, Any] | None = None
    json: Mapping[str, Any] | None = None
    read_timeout: float | None = DEFAULT_READ_TIMEOUT
    reply: Callable[[Any], Any] = _as_is
    form: Mapping[str, str] | None = None
    upload_from: str | None = None
    download_to: str | None = None
    progress: Progress | None = None
    streams_lines: bool = False
    """The reply is NDJSON, one entry a line, read as it arrives."""
    raw_upload: bool = False
    retried: bool = True
    """An idempotent read may be sent again when the server is briefly unreachable."""


@dataclass(frozen=True)
class ExecuteOptions:
    """What an execution asks beyond its code, as a notebook's execute_request does: the
    embedded server's `reply` extension honours them; other servers ignore them."""

    silent: bool = False
    store_history: bool = True
    user_expressions: Mapping[str, str] | None = None
    execution_count: int | None = None
    """The count the execution takes in the notebook (the context's count moves there)."""
    past_inputs: Sequence[tuple[int, str]] = ()
    """Cells that ran elsewhere, by count, for the context's input history."""
    comms: bool = False
    """Comm messages of the execution come as `comm` entries (the `comms` extension)."""

    def body(self) -> dict[str, Any]:
        """The execute body's fields for these options (none for the defaults)."""
        fields: dict[str, Any] = {}
        if self.silent:
            fields["silent"] = True
        if not self.store_history:
            fields["storeHistory"] = False
        if self.user_expressions:
            fields["userExpressions"] = dict(self.user_expressions)
        if self.execution_count is not None:
            fields["executionCount"] = self.execution_count
        if self.comms:
            fields["comms"] = True
        if self.past_inputs:
            fields["pastInputs"] = [
                {"executionCount": count, "code": code} for count, code in self.past_inputs
            ]
        return fields


class CodeLanguage(str, Enum):
    """Languages a context can run."""

    PYTHON = "python"
    JAVASCRIPT = "javascript"


def checked_language(language: str | None) -> str:
    """The language as a plain string, or ValueError when the server cannot run it."""
    try:
        return CodeLanguage(language).value
    except ValueError:
        raise ValueError(f"language must be 'python' or 'javascript', got: {language!r}") from None


def _segment(value: object) -> str:
    return quote(str(value), safe="")


def _sandbox_data(reply: Any) -> dict[str, Any]:
    """Unwrap a lifecycle reply `{"code": "SUCCESS", "data": {...}}`."""
    if not isinstance(reply, dict) or reply.get("code") != "SUCCESS":
        code = reply.get("code") if isinstance(reply, dict) else None
        message = reply.get("message") if isinstance(reply, dict) else None
        raise SandboxError(f"sandbox request failed: {message or reply!r}", code=code)
    data = reply.get("data")
    return data if isinstance(data, dict) else {}


def _new_sandbox(reply: Any) -> dict[str, Any]:
    """The sandbox a creation made, which must carry its id."""
    data = _sandbox_data(reply)
    if not data.get("sandboxId"):
        raise SandboxError(f"sandbox creation answered without a sandbox id: {reply!r}")
    return data


def _context_info(reply: Any) -> dict[str, Any]:
    """A context object, which must name its id, language and working directory."""
    if not isinstance(reply, dict) or not all(reply.get(key) for key in ("id", "language", "cwd")):
        raise SandboxError(f"server returned an incomplete context: {reply!r}")
    return reply


def _server_timeout(timeout: float | None) -> float:
    return (SERVER_DEFAULT_TIMEOUT if timeout is None else timeout) + REPLY_MARGIN


def _without_none(**fields: Any) -> dict[str, Any]:
    return {name: value for name, value in fields.items() if value is not None}


# Sandboxes


def create_sandbox(
    template_name: str,
    idle_timeout: int | None = 600,
    env: dict[str, str] | None = None,
    allow_egress: list[str] | None = None,
) -> Call:
    body: dict[str, Any] = {
        "templateName": template_name,
        "sandboxIdleTimeoutSeconds": idle_timeout,
    }
    if env:
        body["env"] = env  # [ext] the embedded server's; the cloud is never sent it unasked
    if allow_egress:
        body["allowEgress"] = allow_egress
    return Call("POST", "/sandboxes", json=body, reply=_new_sandbox)


def server_health(timeout: float) -> Call:
    """The server's own health (not a sandbox's), asked once: `{"status", "pid", ...}`."""
    return Call("GET", "/health", read_timeout=timeout, retried=False)


def get_sandbox() -> Call:
    return Call("GET", "", reply=_sandbox_data)


def stop_sandbox() -> Call:
    return Call("POST", "stop", reply=_sandbox_data)


def delete_sandbox() -> Call:
    return Call("DELETE", "", reply=_sandbox_data)


def health() -> Call:
    return Call("GET", "health")


# Contexts


def list_contexts() -> Call:
    return Call("GET", "contexts")


def create_context(language: str, cwd: str, history_file: str | None = None) -> Call:
    body = _without_none(language=checked_language(language), cwd=cwd, historyFile=history_file)
    return Call("POST", "contexts", json=body, reply=_context_info)


def get_context(context_id: str) -> Call:
    return Call("GET", f"contexts/{_segment(context_id)}", reply=_context_info)


def execute(
    code: str,
    context_id: str | None,
    language: str | None,
    timeout: float | None,
    options: ExecuteOptions | None = None,
) -> Call:
    body = _without_none(
        code=code,
        timeout=timeout,
        language=None if language is None else checked_language(language),
        contextId=context_id,
    )
    if options is not None:
        body.update(options.body())
    return Call("POST", "contexts/execute", json=body, read_timeout=_server_timeout(timeout))


def execute_streaming(
    code: str,
    context_id: str | None,
    language: str | None,
    timeout: float | None,
    allow_stdin: bool,
    options: ExecuteOptions | None = None,
) -> Call:
    """An execution whose entries arrive as they are produced; `timeout=None` is no limit."""
    body: dict[str, Any] = _without_none(
        code=code,
        language=None if language is None else checked_language(language),
        contextId=context_id,
    )
    body["timeout"] = timeout
    body["allowStdin"] = allow_stdin
    if options is not None:
        body.update(options.body())
    return Call("POST", "contexts/execute", json=body, read_timeout=None, streams_lines=True)


def execution_socket(context_id: str) -> Call:
    """Where the context's WebSocket for executions opens (the "socket" extension)."""
    return Call("GET", f"contexts/{_segment(context_id)}/execute")


def message_socket(context_id: str) -> Call:
    """Where the context's message socket opens (the "comms" and "debug" extensions)."""
    return Call("GET", f"contexts/{_segment(context_id)}/messages")


def interrupt_context(context_id: str) -> Call:
    return Call("POST", f"contexts/{_segment(context_id)}/interrupt")


def restart_context(context_id: str) -> Call:
    return Call("POST", f"contexts/{_segment(context_id)}/restart", reply=_context_info)


def send_input(context_id: str, value: str) -> Call:
    return Call("POST", f"contexts/{_segment(context_id)}/input", json={"value": value})


def complete(context_id: str, code: str, cursor_pos: int) -> Call:
    body = {"code": code, "cursorPos": cursor_pos}
    return Call("POST", f"contexts/{_segment(context_id)}/complete", json=body)


def inspect(context_id: str, code: str, cursor_pos: int, detail_level: int) -> Call:
    body = {"code": code, "cursorPos": cursor_pos, "detailLevel": detail_level}
    return Call("POST", f"contexts/{_segment(context_id)}/inspect", json=body)


def delete_context(context_id: str) -> Call:
    return Call("DELETE", f"contexts/{_segment(context_id)}")


# Files


def read_file(path: str) -> Call:
    return Call("GET", "files", params={"path": path})


def write_file(
    path: str, content: str, mode: str | None, encoding: str | None, create_dir: bool | None
) -> Call:
    """`None` for an option leaves the server's default (644, utf-8, create the directory)."""
    body = _without_none(
        path=path, content=content, mode=mode, encoding=encoding, createDir=create_dir
    )
    return Call("POST", "files", json=body)


# Filesystem


def list_directory(path: str | None, depth: int | None) -> Call:
    return Call("GET", "filesystem", params=_without_none(path=path, depth=depth))


def stat(path: str) -> Call:
    return Call("GET", "filesystem/stat", params={"path": path})


def mkdir(path: str, parents: bool | None, mode: str | None) -> Call:
    """`None` for `parents` or `mode` leaves the server's default (parents, 0755)."""
    body = _without_none(path=path, parents=parents, mode=mode)
    return Call("POST", "filesystem/mkdir", json=body)


def move(source: str, destination: str) -> Call:
    return Call("POST", "filesystem/move", json={"source": source, "destination": destination})


def remove(path: str) -> Call:
    return Call("POST", "filesystem/remove", json={"path": path})


def upload(
    local_file_path: str, target_file_path: str, progress: Progress | None, *, raw: bool = False
) -> Call:
    """Multipart as the cloud takes it, or with `raw` the file as the body, the target in
    the query (the embedded server's `rawUpload` extension: no multipart to build or parse)."""
    if raw:
        return Call(
            "POST",
            "filesystem/upload",
            params={"path": target_file_path},
            read_timeout=None,
            upload_from=local_file_path,
            progress=progress,
            raw_upload=True,
        )
    return Call(
        "POST",
        "filesystem/upload",
        read_timeout=None,
        form={"path": target_file_path},
        upload_from=local_file_path,
        progress=progress,
    )


def download(path: str, save_path: str, progress: Progress | None) -> Call:
    return Call(
        "GET",
        "filesystem/download",
        params={"path": path},
        read_timeout=None,
        download_to=save_path,
        progress=progress,
    )


# Processes


def run_command(command: str, cwd: str, timeout: float | None) -> Call:
    body = _without_none(command=command, cwd=cwd, timeout=timeout)
    return Call("POST", "processes/cmd", json=body, read_timeout=_server_timeout(timeout))


def list_processes() -> Call:
    return Call("GET", "processes")


def get_process(pid: str) -> Call:
    return Call("GET", f"processes/{_segment(pid)}")


def kill_process(pid: str) -> Call:
    return Call("DELETE", f"processes/{_segment(pid)}")
