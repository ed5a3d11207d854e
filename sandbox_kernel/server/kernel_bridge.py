"""Put a kernel that speaks only TCP behind the unix sockets of an ipc connection file.

A sandbox has no network the server can reach, so its kernels talk over unix sockets in a
bound directory. Deno's kernel cannot: this bridge runs in the sandbox as the kernel's
parent, so both share the sandbox's loopback, and pipes each unix connection byte for byte
to the kernel's port (ZMTP is the same stream over ipc and tcp). Standard library only: the
launcher passes this file's text to `python -I -S -c`, since the package itself may not be
visible inside the sandbox.

Usage: python -c BRIDGE CONNECTION_FILE KERNEL_COMMAND...; every argument of the kernel
command equal to CONNECTION_FILE is replaced by the TCP connection file the bridge writes.
"""

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys

CHANNELS = ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")
CONNECT_SECONDS = 60.0
RETRY_SECONDS = 0.01


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()


async def connect(port, kernel_exited):
    """Connect to the kernel's port, waiting while the kernel starts up."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + CONNECT_SECONDS
    while True:
        try:
            return await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if kernel_exited() or loop.time() > deadline:
                raise
            await asyncio.sleep(RETRY_SECONDS)


async def main(connection_file, command):
    with open(connection_file) as handle:
        info = json.load(handle)
    ports = {channel: free_port() for channel in CHANNELS}
    # Beside the sockets: the connection file's own directory is read-only in a sandbox.
    tcp_file = info["ip"] + "-tcp.json"
    descriptor = os.open(tcp_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump({**info, **ports, "transport": "tcp", "ip": "127.0.0.1"}, handle)
    kernel = None

    def kernel_exited():
        return kernel is not None and kernel.returncode is not None

    def bridge_to(port):
        async def bridge(reader, writer):
            try:
                upstream_reader, upstream_writer = await connect(port, kernel_exited)
            except OSError:
                writer.close()
                return
            with contextlib.suppress(OSError):
                os.unlink(tcp_file)  # the kernel listens, so it has read it
            await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))

        return bridge

    # Listen before the kernel starts: the server may connect as soon as it launched us.
    servers = []
    for channel in CHANNELS:
        path = f"{info['ip']}-{info[channel]}"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # left by the kernel this one replaces (a restart)
        servers.append(await asyncio.start_unix_server(bridge_to(ports[channel]), path))
    arguments = [tcp_file if argument == connection_file else argument for argument in command]
    kernel = await asyncio.create_subprocess_exec(*arguments)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, kernel.send_signal, signum)
    code = await kernel.wait()
    for server in servers:
        server.close()
    with contextlib.suppress(OSError):
        os.unlink(tcp_file)
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1], sys.argv[2:])))
