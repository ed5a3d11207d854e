"""The official Jupyter kernel conformance suite, run against the sandbox kernel.

The first kernel gets no endpoint, so it starts (or reuses) the embedded local server; its
completion and inspection samples name a variable that exists only in the sandbox. The second
kernel talks to a server without extensions, the way it talks to the cloud.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import jupyter_kernel_test
from conftest import RunningServer, start_server
from jupyter_client.manager import start_new_kernel

DEFINED_IN_THE_SANDBOX = "conformance_sandbox_value = 42"


class SandboxKernelConformanceTests(jupyter_kernel_test.KernelTests):
    kernel_name = "sandbox"
    language_name = "python"
    file_extension = ".py"

    code_hello_world = "print('hello, world')"
    code_stderr = "import sys; print('test', file=sys.stderr)"
    code_generate_error = "raise ValueError('conformance')"
    code_clear_output = "from IPython.display import clear_output; clear_output()"

    code_execute_result = (
        {"code": "1+2+3", "result": "6"},
        {"code": "[n for n in range(3)]", "result": "[0, 1, 2]"},
        {"code": "from IPython.display import HTML; HTML('<b>x</b>')", "mime": "text/html"},
    )
    code_display_data = (
        {
            "code": "from IPython.display import HTML, display; display(HTML('<b>test</b>'))",
            "mime": "text/html",
        },
        {
            "code": "from IPython.display import Math, display; display(Math(r'\\frac{1}{2}'))",
            "mime": "text/latex",
        },
        {
            "code": "from IPython.display import JSON, display; display(JSON({'a': [1, 2]}))",
            "mime": "application/json",
        },
    )

    code_history_pattern = "1?2*"
    supported_history_operations = ("tail", "search")

    complete_code_samples = ("1", "print('hello, world')", "def f(x):\n  return x*2\n\n\n")
    incomplete_code_samples = ("print('''hello", "def f(x):\n  x*2")
    invalid_code_samples = ("import = 7q",)

    completion_samples = (
        {"text": "conformance_sandbox_va", "matches": {"conformance_sandbox_value"}},
        {"text": "conformance_sandbox_value.bit_len", "matches": {"bit_length"}},
        {"text": "%sbx sta"},
    )
    code_inspect_sample = "conformance_sandbox_value"
    code_page_something = "len?"

    @classmethod
    def setUpClass(cls) -> None:
        cls.ipython_dir = tempfile.TemporaryDirectory()
        env = {**os.environ, "IPYTHONDIR": cls.ipython_dir.name, **cls.server_environment()}
        cls.km, cls.kc = start_new_kernel(kernel_name=cls.kernel_name, env=env)
        reply = cls.kc.execute_interactive(DEFINED_IN_THE_SANDBOX, timeout=60)
        assert reply["content"]["status"] == "ok", reply["content"]

    @classmethod
    def server_environment(cls) -> dict[str, str]:
        """Nothing: the kernel uses the embedded server."""
        return {}

    @classmethod
    def tearDownClass(cls) -> None:
        super().tearDownClass()
        cls.ipython_dir.cleanup()


class PlainServerConformanceTests(SandboxKernelConformanceTests):
    """The same suite where the server offers no extensions: completion and inspection are
    answered locally, so their samples name only what the kernel process knows too, and the
    pager has nothing to show (the plain protocol carries no payloads)."""

    completion_samples = (
        {"text": "zi", "matches": {"zip"}},
        {"text": "%sbx sta"},
    )
    code_inspect_sample = "zip"
    code_page_something = ""

    server: RunningServer
    server_root: Any

    @classmethod
    def server_environment(cls) -> dict[str, str]:
        cls.server_root = tempfile.TemporaryDirectory()
        cls.server = start_server(Path(cls.server_root.name), "--no-extensions")
        return {"SANDBOX_KERNEL_ENDPOINT": cls.server.url, "SANDBOX_KERNEL_TOKEN": cls.server.token}

    @classmethod
    def tearDownClass(cls) -> None:
        super().tearDownClass()
        cls.server.stop()
        cls.server_root.cleanup()
