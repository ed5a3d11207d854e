"""The debugger through `debug_request`: a full DAP session on the sandbox kernel, the same
sequence on python3; only the sandbox's interpreter is debugged."""

from __future__ import annotations

import os
from typing import Any

import pytest
from test_javascript import JavaScriptKernel
from test_kernel import TIMEOUT, RunningKernel, server_environment

from sandbox_kernel.server.interpreters import deno_binary

CODE = "def add(a, b):\n    total = a + b\n    return total\n\nresult = add(40, 2)\nresult"


class DebuggedKernel(RunningKernel):
    seq = 0

    def dap(self, command: str, **arguments: Any) -> dict[str, Any]:
        self.seq += 1
        content = {"type": "request", "seq": self.seq, "command": command, "arguments": arguments}
        message = self.client.session.msg("debug_request", content)
        self.client.control_channel.send(message)
        while True:
            reply = self.client.control_channel.get_msg(timeout=TIMEOUT)
            if reply["parent_header"].get("msg_id") == message["header"]["msg_id"]:
                return reply["content"]

    def wait_for_event(self, event: str) -> dict[str, Any]:
        while True:
            message = self.client.get_iopub_msg(timeout=TIMEOUT)
            if message["msg_type"] == "debug_event" and message["content"]["event"] == event:
                return message["content"]


@pytest.mark.parametrize("name", ["python3", "sandbox"])
def test_a_full_dap_session(name, server, tmp_path):
    kernel = DebuggedKernel(server_environment(server, tmp_path), kernel_name=name)
    try:
        kernel.run("1")  # the sandbox is open: the kernel knows what its server offers
        assert "debugger" in kernel.kernel_info()["supported_features"]
        initialize = kernel.dap(
            "initialize",
            clientID="test",
            adapterID="",
            pathFormat="path",
            linesStartAt1=True,
            columnsStartAt1=True,
            supportsVariableType=True,
        )
        assert initialize["success"], initialize
        assert kernel.dap("attach")["success"]
        info = kernel.dap("debugInfo")
        assert info["success"] and info["body"]["isStarted"]
        dumped = kernel.dap("dumpCell", code=CODE)
        path = dumped["body"]["sourcePath"]
        if name == "sandbox":
            assert not os.path.exists(path) or path.startswith("/tmp")  # a sandbox path
        breakpoints = kernel.dap(
            "setBreakpoints", source={"path": path}, breakpoints=[{"line": 2}], sourceModified=False
        )
        assert breakpoints["body"]["breakpoints"][0]["verified"]
        assert kernel.dap("configurationDone")["success"]
        msg_id = kernel.client.execute(CODE)
        stopped = kernel.wait_for_event("stopped")
        assert stopped["body"]["reason"] == "breakpoint"
        thread_id = stopped["body"]["threadId"]
        frames = kernel.dap("stackTrace", threadId=thread_id)["body"]["stackFrames"]
        assert frames[0]["name"] == "add" and frames[0]["line"] == 2
        scopes = kernel.dap("scopes", frameId=frames[0]["id"])["body"]["scopes"]
        local_scope = next(scope for scope in scopes if scope["name"] == "Locals")
        variables = kernel.dap("variables", variablesReference=local_scope["variablesReference"])
        values = {item["name"]: item["value"] for item in variables["body"]["variables"]}
        assert (values["a"], values["b"]) == ("40", "2")
        source = kernel.dap("source", source={"path": path}, sourceReference=0)
        assert source["body"]["content"] == CODE
        assert kernel.dap("continue", threadId=thread_id)["success"]
        reply = kernel.client._recv_reply(msg_id, timeout=TIMEOUT)
        assert reply["content"]["status"] == "ok"
        if name == "sandbox":  # what was debugged is the sandbox's interpreter
            cwd = kernel.run("import os; os.getcwd()")[1][-1][1]["data"]["text/plain"]
            assert cwd.startswith("'/home/user")
        kernel.dap("disconnect", restart=False, terminateDebuggee=True)
    finally:
        kernel.shutdown()


@pytest.mark.skipif(deno_binary() is None, reason="the deno package is missing")
def test_a_javascript_kernel_never_advertises_the_debugger(server, tmp_path):
    kernel = JavaScriptKernel(server_environment(server, tmp_path))
    try:
        kernel.run("1")  # the session is open on a server that offers `debug`
        info = kernel.kernel_info()
        assert info["debugger"] is False
        assert "debugger" not in info["supported_features"]
        kernel.client.control_channel.send(
            kernel.client.session.msg("debug_request", {"type": "request", "seq": 3})
        )
        assert kernel.client.control_channel.get_msg(timeout=TIMEOUT)["content"]["success"] is False
    finally:
        kernel.shutdown()
