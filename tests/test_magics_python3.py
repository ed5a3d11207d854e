"""`%load_ext sandbox_kernel` in an ordinary python3 kernel: the magics connect on first use,
return values to the local namespace, and move variables to and from the sandbox."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from magics_support import MagicsKernel

from sandbox_kernel import CodeInterpreterSandbox, SandboxNotFoundError


@pytest.fixture(scope="module")
def kernel(server, tmp_path_factory) -> Iterator[MagicsKernel]:
    running = MagicsKernel("python3", server, tmp_path_factory.mktemp("python3"))
    yield running
    running.shutdown()


def status_of(kernel: MagicsKernel) -> dict[str, str]:
    lines = kernel.stdout("%sbx status").splitlines()
    return dict(line.split(":", 1) for line in lines if ":" in line)


def sandbox_exists(server, sandbox_id: str) -> bool:
    try:
        with CodeInterpreterSandbox.connect(sandbox_id, server.url, server.token):
            return True
    except SandboxNotFoundError:
        return False


def test_the_first_verb_connects_and_disconnect_deletes_what_it_created(kernel, server):
    kernel.ok("%sbx disconnect")
    assert kernel.stdout("%sbx status").startswith("Not connected to a sandbox")
    assert kernel.complete("%sbx ls /home/us")["matches"] == ["/home/us"]  # Tab never connects
    assert kernel.stdout("%sbx status").startswith("Not connected to a sandbox")
    kernel.ok("%sbx ls")
    status = status_of(kernel)
    assert status["endpoint"].strip() == f"{server.url} (from SANDBOX_KERNEL_ENDPOINT)"
    sandbox_id = status["sandbox"].strip()
    assert sandbox_exists(server, sandbox_id)
    assert kernel.stdout("%sbx disconnect") == (
        f"Disconnected; sandbox {sandbox_id} was deleted.\n"
    )
    assert not sandbox_exists(server, sandbox_id)


def test_connect_joins_a_sandbox_by_id_and_leaves_it_running(kernel, server, sandbox):
    sandbox.file.write("/home/user/shared.txt", "written by the test")
    shown = kernel.stdout(
        f"%sbx connect --endpoint {server.url} --token {server.token} --sandbox "
        f"{sandbox.sandbox_id}"
    )
    assert f"sandbox:    {sandbox.sandbox_id}" in shown
    assert kernel.result("%sbx cat shared.txt") == {"text/plain": "written by the test"}
    kernel.ok("%sbx disconnect")
    assert sandbox.file.read("/home/user/shared.txt")["content"] == "written by the test"


def test_connect_to_a_sandbox_that_does_not_exist_fails_with_the_servers_message(kernel):
    reply = kernel.failure("%sbx connect --sandbox sbx-does-not-exist")
    assert reply["ename"] == "SandboxNotFoundError"
    assert "sbx-does-not-exist" in reply["evalue"]
    assert "error:" in kernel.stdout("%sbx status")
    assert kernel.stdout("%sbx disconnect") == "Not connected to a sandbox.\n"


def test_line_verbs_return_values_to_the_local_namespace(kernel):
    kernel.ok("%%sbx write /home/user/values/data.csv\na,b\n1,2")
    kernel.ok("entries = %sbx ls /home/user/values")
    assert kernel.local("[(e.name, e.path, e.type, e.size) for e in entries]") == (
        "[('data.csv', '/home/user/values/data.csv', 'file', 8)]"
    )
    kernel.ok("entry = %sbx stat /home/user/values/data.csv")
    assert kernel.local("(entry.is_dir, entry.mtime.year > 2000, entry.mode)") == (
        "(False, True, '0644')"
    )
    kernel.ok("text = %sbx cat /home/user/values/data.csv")
    assert kernel.local("text.splitlines()") == "['a,b', '1,2']"
    kernel.ok("processes = %sbx ps")
    assert kernel.local("all(p.pid > 0 and p.cmdline for p in processes)") == "True"
    kernel.ok("contexts = %sbx ctx ls")
    assert kernel.local("[c.current for c in contexts].count(True)") == "1"


def test_push_and_pull_keep_values_and_types(kernel):
    kernel.ok("%%sbx run\n0")  # connect before assigning, so the cell below is plain Python
    kernel.ok("import datetime\nsent = {'when': datetime.date(2024, 5, 1), 'ids': {3, 1}}")
    kernel.ok("%sbx push sent")
    kernel.ok("%%sbx run\nreceived = (sent['when'].isoformat(), sorted(sent['ids']))")
    kernel.ok("%sbx pull received")
    assert kernel.local("received") == "('2024-05-01', [1, 3])"


def test_push_of_what_cannot_be_pickled_says_so_and_sends_nothing(kernel):
    kernel.ok("import threading\nfine = 1\nlock = threading.Lock()")
    reply = kernel.failure("%sbx push fine lock")
    assert reply["ename"] == "VariableTransferError"
    assert reply["evalue"].startswith("cannot push lock: lock objects cannot be pickled")
    assert kernel.in_sandbox("'fine' in globals()") == "False"


def test_push_of_an_object_the_sandbox_cannot_unpickle_says_so(kernel):
    kernel.ok("class OnlyHere:\n    pass\n\ninstance = OnlyHere()")
    reply = kernel.failure("%sbx push instance")
    assert reply["ename"] == "VariableTransferError"
    assert reply["evalue"].startswith("cannot push instance: the sandbox cannot unpickle it")
    assert "OnlyHere" in reply["evalue"]


def test_cat_of_a_file_too_big_to_read_inline_points_to_get(kernel):
    kernel.ok("%sbx sh head -c 68000000 /dev/zero > too-big.bin")  # over the 64 MiB limit
    reply = kernel.failure("%sbx cat too-big.bin")
    assert reply["ename"] == "SandboxRequestError"
    assert "copy it here with `%sbx get too-big.bin` instead" in reply["evalue"]
    kernel.ok("%sbx rm too-big.bin")


def test_tab_never_waits_for_a_slow_listing_and_uses_it_once_it_arrives(kernel):
    kernel.ok("%sbx mkdir -p /home/user/slow/inner")
    kernel.ok("%config SbxMagics.completion_timeout = 0.0")
    try:
        first = kernel.complete("%sbx ls /home/user/slow/in")
        time.sleep(0.5)
        second = kernel.complete("%sbx ls /home/user/slow/in")
    finally:
        kernel.ok("%config SbxMagics.completion_timeout = 0.5")
    assert first["matches"] == ["/home/user/slow/in"]  # nothing to add yet: the word itself
    assert second["matches"] == ["/home/user/slow/inner/"]
