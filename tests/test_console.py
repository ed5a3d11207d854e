"""`jupyter console` on the sandbox kernel, in a pseudo-terminal as a person would use it: the
banner says where cells run, the kernel's stderr stays quiet, and `exit` quits."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pexpect
import pytest

from sandbox_kernel import CodeInterpreterSandbox, SandboxNotFoundError

JUPYTER = str(Path(sys.executable).with_name("jupyter"))
STRAY_LINES = ("Debugging will proceed", "XDG_RUNTIME_DIR", "RuntimeDirWarning", "frozen modules")


@pytest.fixture
def console(server, tmp_path):
    env = {
        **os.environ,
        "IPYTHONDIR": str(tmp_path / "ipython"),
        "SANDBOX_KERNEL_ENDPOINT": server.url,
        "SANDBOX_KERNEL_TOKEN": server.token,
        "TERM": "dumb",
    }
    # As on a machine with no session manager: the kernel's runtime directory falls back.
    for name in ("XDG_RUNTIME_DIR", "SANDBOX_KERNEL_RUNTIME_DIR", "PYDEVD_DISABLE_FILE_VALIDATION"):
        env.pop(name, None)
    child = pexpect.spawn(
        JUPYTER,
        ["console", "--kernel", "sandbox", "--simple-prompt"],
        env=env,
        cwd=str(tmp_path),
        encoding="utf-8",
        timeout=90,
    )
    yield child
    if child.isalive():
        child.terminate(force=True)


def test_console_banner_names_the_sandbox_and_exit_quits(console, server):
    console.expect(r"In \[1\]: ")
    banner = console.before
    match = re.search(r"Cells run in sandbox (sbx-\w+) at (\S+) \(isolation: (\w+)\)", banner)
    assert match, banner
    assert match.group(2) == server.url
    assert "not chosen yet" not in banner
    console.sendline("print(6 * 7)")
    console.expect(r"In \[2\]: ")
    assert "42" in console.before
    seen = banner + console.before
    console.sendline("exit")
    console.expect(pexpect.EOF)
    seen += console.before
    for stray in STRAY_LINES:
        assert stray not in seen, seen
    with pytest.raises(SandboxNotFoundError):
        CodeInterpreterSandbox.connect(match.group(1), server.url, server.token)
