"""User-mode networking for a sandbox that may reach the network (`serve --network`).

The sandbox keeps a network namespace of its own; slirp4netns (or pasta, from passt)
gives it a virtual interface whose traffic leaves through ordinary sockets of the host.
The host's loopback (the server's port among its services) stays out of reach: both tools
are told not to map the host's 127.0.0.1 into the sandbox. Traffic to other addresses,
this machine's own public ones included, goes out as any program's would.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from dataclasses import dataclass

READY_SECONDS = 10.0
TOOLS = ("slirp4netns", "pasta")


class NetworkUnavailable(RuntimeError):
    """User-mode networking could not be set up."""


def find_tool() -> str | None:
    """The tool `SANDBOX_KERNEL_NETWORK_TOOL` names (slirp4netns or pasta, or a path to
    one), else the first of them on this host, or None."""
    chosen = os.environ.get("SANDBOX_KERNEL_NETWORK_TOOL")
    if chosen:
        return shutil.which(chosen)
    for name in TOOLS:
        path = shutil.which(name)
        if path is not None:
            return path
    return None


@dataclass
class UserNetwork:
    """The helper process that carries one sandbox's traffic."""

    process: subprocess.Popen
    exit_fd: int | None

    def stop(self) -> None:
        if self.exit_fd is not None:
            os.close(self.exit_fd)
            self.exit_fd = None
        with contextlib.suppress(OSError):
            self.process.kill()
        with contextlib.suppress(subprocess.SubprocessError):
            self.process.wait(timeout=5)


def start(tool: str, anchor_pid: int, netns_fd: int, userns_fd: int) -> UserNetwork:
    """Give the network namespace on `netns_fd` (of the anchor `anchor_pid`, owned by the
    user namespace on `userns_fd`) an interface with a default route; wait until it is up.

    pasta joins the namespaces by fd, which it can open only as the server's own user (it
    would otherwise become nobody first), and drops its capabilities once inside them."""
    netns = f"/proc/self/fd/{netns_fd}"
    if os.path.basename(tool) == "pasta":
        argv = [tool, "--config-net", "--no-map-gw", "--foreground", "--quiet"]
        # No port forwarded either way: pasta would map the host's loopback ports by default.
        argv += ["-t", "none", "-u", "none", "-T", "none", "-U", "none"]
        argv += ["--runas", str(os.geteuid()), "--dns-forward", "10.0.2.3"]
        argv += ["--userns", f"/proc/self/fd/{userns_fd}", "--netns", netns]
        process = subprocess.Popen(argv, pass_fds=(netns_fd, userns_fd), **_quiet())
        network = UserNetwork(process, None)
    else:
        exit_reader, exit_writer = os.pipe()
        argv = [tool, "--configure", "--mtu=65520", "--disable-host-loopback"]
        argv += ["--enable-sandbox", "--enable-seccomp", f"--exit-fd={exit_reader}"]
        argv += ["--netns-type=path", netns, "tap0"]
        try:
            process = subprocess.Popen(argv, pass_fds=(netns_fd, exit_reader), **_quiet())
        finally:
            os.close(exit_reader)
        network = UserNetwork(process, exit_writer)
    try:
        _wait_for_route(anchor_pid, process)
    except BaseException:
        network.stop()
        raise
    return network


def _quiet() -> dict:
    return {
        "stdin": subprocess.DEVNULL,
        "stdout": subprocess.DEVNULL,
        "stderr": subprocess.DEVNULL,
        "start_new_session": True,
    }


def _wait_for_route(anchor_pid: int, process: subprocess.Popen) -> None:
    """A default route in the namespace means the tool configured its interface."""
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise NetworkUnavailable(f"{process.args[0]} exited with code {process.returncode}")
        with contextlib.suppress(OSError), open(f"/proc/{anchor_pid}/net/route") as routes:
            if any(line.split()[1:2] == ["00000000"] for line in routes.readlines()[1:]):
                return
        time.sleep(0.01)
    raise NetworkUnavailable(f"{process.args[0]} did not configure the sandbox's network")
