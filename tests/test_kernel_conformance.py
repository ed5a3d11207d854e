"""The official Jupyter kernel conformance suite, run against the sandbox kernel.

The kernel gets no endpoint, so it starts (or reuses) the embedded local server.
"""

from __future__ import annotations

import os
import tempfile

import jupyter_kernel_test
from jupyter_client.manager import start_new_kernel


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

    @classmethod
    def setUpClass(cls) -> None:
        cls.ipython_dir = tempfile.TemporaryDirectory()
        env = {**os.environ, "IPYTHONDIR": cls.ipython_dir.name}
        cls.km, cls.kc = start_new_kernel(kernel_name=cls.kernel_name, env=env)

    @classmethod
    def tearDownClass(cls) -> None:
        super().tearDownClass()
        cls.ipython_dir.cleanup()
