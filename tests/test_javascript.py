"""JavaScript contexts (Deno's kernel in the sandbox) through our client, the unmodified
agentrun-sdk, the `sandbox-javascript` kernel, notebooks and the `%sbx` magics."""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from agentrun.sandbox import Sandbox, SandboxClient, TemplateType
from agentrun.utils.config import Config
from agentrun.utils.exception import ClientError, ResourceNotExistError
from conftest import start_server
from jupyter_client import KernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from test_kernel import TIMEOUT, RunningKernel, server_environment

from sandbox_kernel import CodeInterpreterSandbox, SandboxError
from sandbox_kernel.server.confinement import (
    IsolationSettings,
    Namespaces,
    enter_argv,
    limits_argv,
    mounted_directories,
)
from sandbox_kernel.server.contexts import ContextKernelSpecs, check_language
from sandbox_kernel.server.errors import InvalidRequest
from sandbox_kernel.server.interpreters import (
    deno_binary,
    javascript_interpreter,
    python_interpreter,
)
from sandbox_kernel.server.launchers import Launcher

ANSI_CODES = re.compile(r"\x1b\[[0-9;]*m")
KERNELSPEC = {"name": "sandbox-javascript", "display_name": "JavaScript (Sandbox)"}

pytestmark = pytest.mark.skipif(deno_binary() is None, reason="the deno package is missing")


def of_type(reply: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [entry for entry in reply["results"] if entry["type"] == kind]


def plain(text: str) -> str:
    return ANSI_CODES.sub("", text)


# ---- the server, through our client


def test_health_lists_javascript(sandbox):
    assert sandbox.check_health()["languages"] == ["python", "javascript"]


def test_client_runs_javascript_with_state_console_output_and_errors(sandbox):
    context = sandbox.context.create(language="javascript")
    languages = {item["id"]: item["language"] for item in sandbox.context.list()}
    assert languages[context.context_id] == "javascript"
    assert of_type(context.execute("let x = 40"), "endOfExecution")[0]["status"] == "ok"

    reply = context.execute("console.log('x is', x); console.error('careful'); x + 2")
    stdout, stderr, result, end = reply["results"]
    assert stdout == {"type": "stdout", "text": "x is 40\n"}
    assert stderr == {"type": "stderr", "text": "careful\n"}
    assert (result["type"], result["isMainResult"], result["text"]) == ("result", True, "42")
    assert plain(result["bundle"]["text/plain"]) == "42"  # the bundle keeps Deno's colours
    assert (end["status"], end["executionCount"]) == ("ok", 2)

    failed = context.execute("throw new TypeError('no such thing')")["results"]
    assert (failed[0]["type"], failed[0]["name"], failed[0]["value"]) == (
        "error",
        "TypeError",
        "no such thing",
    )
    assert "at <anonymous>" in failed[0]["traceback"]
    assert failed[-1]["status"] == "error"

    context_id = context.context_id
    context.delete()
    assert context_id not in {item["id"] for item in sandbox.context.list()}
    with pytest.raises(SandboxError) as gone:
        sandbox.context.get(context_id)
    assert gone.value.status == 404


def test_execute_with_only_the_language_uses_a_default_javascript_context(sandbox):
    first = sandbox.context.execute("const kept = 'yes'", language="javascript")
    second = sandbox.context.execute("kept", language="javascript")
    assert second["contextId"] == first["contextId"]
    assert of_type(second, "result")[0]["text"] == '"yes"'
    python = sandbox.context.execute("1 + 1", language="python")
    assert python["contextId"] != first["contextId"]


def test_javascript_runs_inside_the_sandbox(server, sandbox):
    sandbox.file.write("/home/user/from-api.txt", "written by the API")
    context = sandbox.context.create(language="javascript")
    code = "[Deno.cwd(), await Deno.readTextFile('from-api.txt')].join(' | ')"
    result = of_type(context.execute(code), "result")[0]
    assert result["text"] == '"/home/user | written by the API"'
    if server.isolation == "bwrap":
        hostname = of_type(context.execute("Deno.hostname()"), "result")[0]
        assert hostname["text"] == '"sandbox"'


def test_interrupt_stops_a_javascript_loop_and_keeps_state(sandbox):
    context = sandbox.context.create(language="javascript")
    context.execute("let counter = 7")
    timer = threading.Timer(1.0, context.interrupt)
    timer.start()
    reply = context.execute("while (true) { counter + 1 }", timeout=20)
    timer.join()
    assert of_type(reply, "error")[0]["name"] == "KeyboardInterrupt"
    assert of_type(reply, "endOfExecution")[0]["status"] == "interrupted"
    assert of_type(context.execute("counter"), "result")[0]["text"] == "7"


def test_restart_gives_a_fresh_javascript_interpreter(sandbox):
    context = sandbox.context.create(language="javascript")
    context.execute("globalThis.before = 1")
    context.restart()
    assert of_type(context.execute("typeof before"), "result")[0]["text"] == '"undefined"'


def test_a_server_without_deno_says_what_javascript_needs():
    specs = ContextKernelSpecs(
        Launcher(IsolationSettings(), Path("/nonexistent"), "sbx"),
        interpreters={"python": python_interpreter()},
    )
    assert specs.available() == ["python"]
    with pytest.raises(InvalidRequest, match="pip install deno"):
        check_language("javascript", specs)


def test_a_memory_limit_caps_the_javascript_heap(tmp_path):
    """V8 cannot start under an address-space limit; its heap is capped instead."""
    server = start_server(tmp_path / "root", "--memory-mb", "256")
    try:
        with CodeInterpreterSandbox.create(endpoint=server.url, token=server.token) as sandbox:
            context = sandbox.context.create(language="javascript")
            assert of_type(context.execute("6 * 7"), "result")[0]["text"] == "42"
            code = "const hoard = []; while (true) hoard.push(new Array(1e6).fill(1.5))"
            reply = context.execute(code, timeout=60)
            assert of_type(reply, "error")[0]["name"] == "ContextDied"
    finally:
        server.stop()


# ---- the unmodified agentrun-sdk


@pytest.fixture
def sdk_sandbox(server) -> Iterator[Any]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AGENTRUN_DATA_ENDPOINT", server.url)
        patch.setenv("DISABLE_BREAKING_CHANGES_WARNING", "1")
        config = Config(headers={"X-API-Key": server.token})
        created = SandboxClient(config=config).create_sandbox(
            template_name="sdk-javascript", config=config
        )
        sandbox = Sandbox.connect(
            created.sandbox_id, template_type=TemplateType.CODE_INTERPRETER, config=config
        )
        yield sandbox
        with contextlib.suppress(ResourceNotExistError):
            sandbox.delete()


def test_sdk_runs_javascript_with_state_console_output_and_errors(sdk_sandbox):
    context = sdk_sandbox.context.create(language="javascript")
    context_id = context.context_id
    assert sdk_sandbox.context.get(context_id).context_id == context_id

    assert context.execute("let x = 40")["results"][-1]["status"] == "ok"
    reply = context.execute("console.log('x is', x)\nx + 2")
    assert reply["contextId"] == context_id
    stdout, result, end = reply["results"]
    assert stdout == {"type": "stdout", "text": "x is 40\n"}
    assert (result["type"], result["isMainResult"], result["text"]) == ("result", True, "42")
    assert (end["type"], end["status"]) == ("endOfExecution", "ok")

    failed = context.execute("null.property")["results"]
    assert (failed[0]["type"], failed[0]["name"]) == ("error", "TypeError")
    assert failed[-1]["status"] == "error"

    assert sdk_sandbox.context.delete() == {"id": context_id, "deleted": True}
    with pytest.raises(ClientError) as gone:
        sdk_sandbox.context.get(context_id)
    assert gone.value.status_code == 404


# ---- the sandbox-javascript kernel


class JavaScriptKernel(RunningKernel):
    """The `sandbox-javascript` kernel, run and read as RunningKernel runs `sandbox`."""

    def __init__(self, env: dict[str, str]) -> None:
        self.manager = KernelManager(kernel_name="sandbox-javascript")
        self.manager.start_kernel(env=env)
        self.client = self.manager.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=TIMEOUT)


@pytest.fixture(scope="module")
def kernel(server, tmp_path_factory) -> Iterator[JavaScriptKernel]:
    running = JavaScriptKernel(server_environment(server, tmp_path_factory.mktemp("js-kernel")))
    yield running
    running.shutdown()


def test_kernel_describes_itself_as_javascript(kernel):
    info = kernel.kernel_info()
    language = info["language_info"]
    assert (language["name"], language["file_extension"]) == ("javascript", ".js")
    assert language["codemirror_mode"] == "javascript"
    assert info["banner"].lstrip().startswith("Cells run in")  # no local IPython banner


def test_kernel_shows_outputs_errors_and_counts_as_the_python_kernel_does(kernel):
    first, outputs = kernel.run("let y = 40; console.log('hello from', Deno.cwd())")
    assert first["status"] == "ok"
    assert outputs == [("stream", {"name": "stdout", "text": "hello from /home/user/work\n"})]

    second, outputs = kernel.run("y + 2")
    assert second["execution_count"] == first["execution_count"] + 1
    [(kind, content)] = outputs
    assert kind == "execute_result"
    assert plain(content["data"]["text/plain"]) == "42"
    assert content["execution_count"] == second["execution_count"]

    failed, outputs = kernel.run("throw new RangeError('out of range')")
    assert (failed["status"], failed["ename"], failed["evalue"]) == (
        "error",
        "RangeError",
        "out of range",
    )
    assert failed["execution_count"] == second["execution_count"] + 1
    assert [kind for kind, _ in outputs] == ["error"]
    assert outputs[0][1]["ename"] == "RangeError"


def test_sbx_magics_run_locally_in_the_javascript_kernel(kernel):
    kernel.run("await Deno.writeTextFile('/home/user/from-js.txt', 'made by JavaScript')")
    reply, outputs = kernel.run("%sbx cat /home/user/from-js.txt")
    assert reply["status"] == "ok"
    assert outputs[0][1]["data"]["text/plain"] == "made by JavaScript"
    _, outputs = kernel.run("%sbx ctx ls")
    listing = outputs[0][1]["data"]["text/plain"]
    assert kernel.status()["context"] in listing
    assert "javascript" in listing
    mixed, _ = kernel.run("console.log(1)\n%sbx ls")
    assert (mixed["status"], mixed["ename"]) == ("error", "UsageError")


def test_is_complete_does_not_judge_javascript_as_python(kernel):
    kernel.client.is_complete("const f = (a) => { return a }")
    reply = kernel.client.get_shell_msg(timeout=TIMEOUT)["content"]
    assert reply["status"] == "unknown"


# ---- notebooks


def javascript_notebook(*sources: str) -> nbformat.NotebookNode:
    notebook = nbformat.v4.new_notebook(
        metadata={"kernelspec": {**KERNELSPEC, "language": "javascript"}}
    )
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    return notebook


def test_nbclient_runs_a_javascript_notebook_with_outputs_and_counts(server, tmp_path):
    notebook = javascript_notebook("let n = 20", "console.log('twice', n * 2)", "n + 1")
    NotebookClient(notebook, timeout=120, resources={"metadata": {"path": str(tmp_path)}}).execute(
        env=server_environment(server, tmp_path)
    )
    assert [cell.execution_count for cell in notebook.cells] == [1, 2, 3]
    assert notebook.cells[1].outputs[0]["text"] == "twice 40\n"
    assert plain(notebook.cells[2].outputs[0]["data"]["text/plain"]) == "21"


def test_nbclient_stops_on_a_failing_javascript_cell(server, tmp_path):
    notebook = javascript_notebook("console.log('first')", "throw new Error('broken')", "'never'")
    client = NotebookClient(notebook, timeout=120, resources={"metadata": {"path": str(tmp_path)}})
    with pytest.raises(CellExecutionError, match="broken"):
        client.execute(env=server_environment(server, tmp_path))
    assert notebook.cells[2].outputs == []


def test_nbconvert_execute_fails_on_a_failing_javascript_cell(server, tmp_path):
    notebook = javascript_notebook("console.log('first')", "throw new Error('broken cell')")
    nbformat.write(notebook, tmp_path / "bad.ipynb")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "jupyter",
            "nbconvert",
            "--to",
            "notebook",
            "--execute",
            "bad.ipynb",
        ],
        env=server_environment(server, tmp_path),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode != 0
    assert "broken cell" in result.stderr


# ---- from a Python notebook, through the magics


def test_python_kernel_runs_javascript_through_ctx_new_and_sbx_run(server, tmp_path):
    python = RunningKernel(server_environment(server, tmp_path))
    try:
        reply, outputs = python.run("%sbx ctx new --language javascript")
        assert reply["status"] == "ok"
        table = outputs[0][1]["data"]["text/plain"]
        context_id = re.search(r"\b[0-9a-f]{32}\b", table).group()
        python.run(f"%%sbx run --ctx {context_id}\nlet z = 40")
        reply, outputs = python.run(f"%%sbx run --ctx {context_id}\nconsole.log('z', z)\nz + 2")
        assert reply["status"] == "ok"
        assert outputs[0] == ("stream", {"name": "stdout", "text": "z 40\n"})
        assert plain(outputs[1][1]["data"]["text/plain"]) == "42"
        failed, _ = python.run(f"%%sbx run --ctx {context_id}\nthrow new Error('from js')")
        assert (failed["status"], failed["ename"], failed["evalue"]) == (
            "error",
            "Error",
            "from js",
        )
    finally:
        python.shutdown()


# ---- how a javascript kernel is launched (pure argv, no server)


def test_an_interpreter_outside_the_python_prefix_is_bound_read_only():
    settings = IsolationSettings(
        bwrap="/usr/bin/bwrap",
        runtime=Path("/run/sbk/abc"),
        python_prefixes=("/opt/py",),
        interpreter_directories=("/home/someone/.local/bin",),
    )
    argv = enter_argv(
        settings,
        root=Path("/data/sbx/fs"),
        binds=[],
        namespaces=Namespaces(user=7, pid=8, network=9),
        cwd="/home/user",
        command=["deno"],
    )
    bound = ("/home/someone/.local/bin", "/home/someone/.local/bin")
    assert bound in [(argv[i + 1], argv[i + 2]) for i, arg in enumerate(argv) if arg == "--ro-bind"]
    assert "/home/someone/.local/bin" in mounted_directories(settings)


def test_a_memory_limit_becomes_a_heap_limit_for_javascript_only():
    settings = IsolationSettings(
        memory_bytes=256 * 2**20, address_space_limit=True, prlimit="/usr/bin/prlimit"
    )
    javascript = javascript_interpreter("/opt/deno")
    assert javascript.command(settings.memory_bytes)[:2] == [
        "env",
        "DENO_V8_FLAGS=--max-old-space-size=256",
    ]
    assert not javascript.limits_address_space
    assert "--as=268435456" not in limits_argv(settings, [], limit_address_space=False)
    python = python_interpreter()
    assert python.command(settings.memory_bytes) == list(python.argv)
    assert "--as=268435456" in limits_argv(settings, [])
