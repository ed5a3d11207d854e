"""A real kernel (the sandbox kernel, or python3 with `%load_ext sandbox_kernel`) driven through
jupyter_client, for the `%sbx` tests."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Any

from test_kernel import TIMEOUT, RunningKernel


class MagicsKernel(RunningKernel):
    """A kernel whose `%sbx` magics reach the tests' server; runs cells and collects output."""

    def __init__(self, kernel_name: str, server: Any, directory: Path) -> None:
        self.kernel_name = kernel_name
        env = {
            **os.environ,
            "IPYTHONDIR": str(directory / "ipython"),
            "SANDBOX_KERNEL_ENDPOINT": server.url,
            "SANDBOX_KERNEL_TOKEN": server.token,
        }
        # Local files of the tests live in pytest's folders beside the kernel's own folder, as
        # a user's config file would allow (c.SbxMagics.local_root).
        # The magics mean the same in both kernels: cells in /home/user (no folder copy).
        settings = [f"--SbxMagics.local_root={directory.parent}"]
        if kernel_name == "sandbox":
            settings.append("--SandboxKernel.workspace=none")
        super().__init__(env, *settings, kernel_name=kernel_name, cwd=str(directory))
        if kernel_name != "sandbox":
            self.ok("%load_ext sandbox_kernel")

    @property
    def is_sandbox_kernel(self) -> bool:
        return self.kernel_name == "sandbox"

    def ok(self, code: str, **options: Any) -> list[tuple[str, dict]]:
        reply, outputs = self.run(code, **options)
        assert reply["status"] == "ok", (code, reply, outputs)
        return outputs

    def failure(self, code: str) -> dict[str, Any]:
        """The error reply of a cell that must fail."""
        reply, outputs = self.run(code)
        assert reply["status"] == "error", (code, outputs)
        return reply

    def result(self, code: str) -> dict[str, Any]:
        """The MIME bundle of the cell's execute_result."""
        results = [c["data"] for kind, c in self.ok(code) if kind == "execute_result"]
        assert len(results) == 1, (code, results)
        return results[0]

    def local(self, expression: str) -> str:
        """The text/plain repr of `expression` evaluated in the kernel's own (local) namespace."""
        reply, _ = self.run("%sbx status", user_expressions={"value": expression})
        value = reply["user_expressions"]["value"]
        assert value["status"] == "ok", value
        return value["data"]["text/plain"]

    def in_sandbox(self, code: str) -> str:
        """Run `code` in the sandbox's current context; the text/plain of its result, if any."""
        cell = code if self.is_sandbox_kernel else f"%%sbx run\n{code}"
        results = [c["data"] for kind, c in self.ok(cell) if kind == "execute_result"]
        return results[0]["text/plain"] if results else ""

    def interrupted(self, code: str, after: float) -> tuple[dict[str, Any], float]:
        """Start `code`, interrupt the kernel `after` seconds later: the reply, and how long
        the cell took to end after the interrupt."""
        msg_id = self.client.execute(code)
        time.sleep(after)
        interrupted_at = time.monotonic()
        self.manager.interrupt_kernel()
        while True:
            reply = self.client.get_shell_msg(timeout=TIMEOUT)
            if reply["parent_header"].get("msg_id") == msg_id:
                return reply["content"], time.monotonic() - interrupted_at

    def complete(self, code: str) -> dict[str, Any]:
        self.client.complete(code, len(code))
        return self.client.get_shell_msg(timeout=TIMEOUT)["content"]


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
