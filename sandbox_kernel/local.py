"""The embedded default: start a local sandbox server in the background, or reuse this user's.

The running server is recorded in a state file (url, token, pid; mode 0600) under the user's
runtime directory. A lock file keeps two kernels starting at once from starting two servers.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import psutil
from platformdirs import user_runtime_dir

START_TIMEOUT_SECONDS = 30.0
HEALTH_TIMEOUT_SECONDS = 2.0
STOP_TIMEOUT_SECONDS = 10.0


class EmbeddedServerError(RuntimeError):
    """The embedded server could not be started."""


@dataclass(frozen=True)
class LocalServer:
    """Where the embedded server listens and the token it wants."""

    url: str
    token: str
    pid: int


def runtime_dir() -> Path:
    override = os.environ.get("SANDBOX_KERNEL_RUNTIME_DIR")
    return Path(override) if override else Path(user_runtime_dir("sandbox-kernel"))


def state_file_name() -> str:
    """One embedded server per Python installation: two virtual environments (or two
    checkouts) never share a server whose code belongs to the other."""
    digest = hashlib.sha256(sys.prefix.encode()).hexdigest()[:12]
    return f"server-{digest}.json"


def state_file() -> Path:
    return runtime_dir() / state_file_name()


def read_state() -> LocalServer | None:
    """The recorded server, if the record exists and that server answers."""
    try:
        state = json.loads(state_file().read_text())
        server = LocalServer(state["url"], state["token"], int(state["pid"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return server if is_alive(server) else None


def is_alive(server: LocalServer) -> bool:
    """True when the recorded process runs and the server at its url says it is that one."""
    if not psutil.pid_exists(server.pid):
        return False
    # Imported here: a cold start (no server recorded) spawns one before loading the client.
    from .client.endpoints import server_health
    from .client.errors import SandboxError
    from .client.settings import EMBEDDED, ClientSettings
    from .client.transport import DataClient

    client = DataClient(ClientSettings(endpoint=server.url, token=server.token, source=EMBEDDED))
    try:
        health = client.send(server_health(HEALTH_TIMEOUT_SECONDS))
    except SandboxError:
        return False
    finally:
        client.close()
    return isinstance(health, dict) and health.get("pid") == server.pid


@dataclass
class Starting:
    """A server this process started and has not seen ready yet, and the lock it holds
    meanwhile (so other kernels wait for this server instead of starting their own)."""

    process: subprocess.Popen
    log_path: Path
    start_of_run: int
    lock: IO[str] | None


_starting: Starting | None = None
_starting_guard = threading.Lock()


def ensure_server() -> LocalServer:
    """Return this user's running embedded server, starting one if there is none."""
    global _starting
    with _starting_guard:
        starting, _starting = _starting, None
        if starting is not None:
            try:
                return wait_until_ready(starting)
            finally:
                if starting.lock is not None:
                    starting.lock.close()
    server = read_state()
    if server is not None:
        return server
    directory = runtime_dir()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(state_file().with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        server = read_state()
        if server is not None:
            return server
        return start_server(directory)


def embedded_endpoint() -> tuple[str, str]:
    """The client's fallback where nothing names a server: this user's embedded server,
    started if none runs, as `(endpoint, token)`."""
    server = ensure_server()
    return server.url, server.token


def begin_server() -> None:
    """Start this user's embedded server if none runs, without waiting for it: a kernel's
    first step on a cold machine, so the server starts while the kernel itself loads.
    `ensure_server` then waits for it; `abandon_server` stops it if it is not wanted."""
    global _starting
    with _starting_guard:
        if _starting is not None or read_state() is not None:
            return
        directory = runtime_dir()
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        lock = open(state_file().with_suffix(".lock"), "w")  # noqa: SIM115 (held until ready)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # another kernel is starting one: ensure_server waits for it
            lock.close()
            return
        if read_state() is not None:
            lock.close()
            return
        _starting = Starting(*spawn_server(directory), lock=lock)


def abandon_server() -> None:
    """Stop the server `begin_server` started, when the kernel turned out to be configured
    for another one (a config file can name an endpoint that the environment does not)."""
    global _starting
    with _starting_guard:
        starting, _starting = _starting, None
    if starting is None:
        return
    starting.process.terminate()
    with contextlib.suppress(subprocess.TimeoutExpired):
        starting.process.wait(STOP_TIMEOUT_SECONDS)
    if starting.lock is not None:
        starting.lock.close()


def start_server(directory: Path) -> LocalServer:
    """Start `sandbox-kernel serve` detached from the caller and wait until it is ready."""
    process, log_path, start_of_run = spawn_server(directory)
    return wait_until_ready(Starting(process, log_path, start_of_run, lock=None))


def spawn_server(directory: Path) -> tuple[subprocess.Popen, Path, int]:
    """`sandbox-kernel serve` started detached from the caller: (process, log, log offset)."""
    log_path = state_file().with_suffix(".log")
    command = [
        sys.executable,
        "-m",
        "sandbox_kernel.cli",
        "serve",
        "--port",
        "0",
        "--state-file",
        str(state_file()),
    ]
    environment = {k: v for k, v in os.environ.items() if not k.startswith("JPY_")}
    with open(log_path, "ab") as log:
        start_of_run = log.tell()
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
            env=environment,
            start_new_session=True,
            cwd=directory,
        )
    return process, log_path, start_of_run


def wait_until_ready(starting: Starting) -> LocalServer:
    """The started server once it recorded itself; a clear error if it died or hung."""
    process, log_path, start_of_run = starting.process, starting.log_path, starting.start_of_run
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        server = read_state()
        if server is not None and server.pid == process.pid:
            return server
        if process.poll() is not None:
            reason = last_words(log_path, start_of_run)
            raise EmbeddedServerError(
                f"the embedded server failed to start: it exited with code {process.returncode}"
                + (f": {reason}" if reason else "")
                + f" (log: {log_path})"
            )
        time.sleep(0.05)
    process.kill()
    raise EmbeddedServerError(
        f"the embedded server failed to start within {START_TIMEOUT_SECONDS:.0f} s; see {log_path}"
    )


def last_words(log_path: Path, offset: int) -> str:
    """The last line a failed server wrote to its log in this run: it says why."""
    try:
        with open(log_path, "rb") as log:
            log.seek(offset)
            lines = log.read().decode("utf-8", "replace").strip().splitlines()
    except OSError:
        return ""
    return lines[-1].removeprefix("sandbox-kernel serve: ") if lines else ""


def stop_server(timeout: float = STOP_TIMEOUT_SECONDS) -> bool:
    """Stop this user's embedded server if one runs and wait for it; True when one was stopped.

    The server gets `timeout` seconds to shut its kernels down before it is killed.
    """
    server = read_state()
    if server is None:
        return False
    try:
        process = psutil.Process(server.pid)
        process.terminate()
        process.wait(timeout)
    except psutil.TimeoutExpired:
        process.kill()
        with contextlib.suppress(psutil.Error):
            process.wait(timeout)
    except psutil.NoSuchProcess:
        pass
    forget(server)
    return True


def forget(server: LocalServer) -> None:
    """Remove the state file if it still records `server` (a killed server cannot do it)."""
    try:
        if json.loads(state_file().read_text()).get("pid") == server.pid:
            state_file().unlink()
    except (OSError, ValueError):
        pass
