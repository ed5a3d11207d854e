"""The file API against sandbox code that swaps a directory for a link to a host directory.

A thread in the sandbox exchanges `race/real` (a directory) and `race/link` (a link to a host
directory) with `renameat2(RENAME_EXCHANGE)` as fast as it can, while each test hammers one
operation on paths through `race/real`. A link means the sandbox's own `/` to the API, as
it does to code, so whatever the timing, nothing of the host directory is ever read, made,
moved or removed. Each operation is tried for a few seconds, or until it escapes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from conftest import RunningServer

from sandbox_kernel import CodeInterpreterSandbox

pytestmark = pytest.mark.timeout(120)

SECONDS_PER_OPERATION = 3.0
HOST_MARKER = "HOST-MARKER " * 40
REAL = "/home/user/race/real"

SWAPPER = """
import ctypes, os, platform, threading
libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD, RENAME_EXCHANGE = -100, 2
if hasattr(libc, "renameat2"):
    exchange = lambda a, b: libc.renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE)
else:
    number = {"x86_64": 316, "aarch64": 276}[platform.machine()]
    exchange = lambda a, b: libc.syscall(number, AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE)
os.makedirs("/home/user/race/real", exist_ok=True)
for name, text in (("marker.txt", "sandbox"), ("victim.txt", "sandbox victim")):
    with open(f"/home/user/race/real/{name}", "w") as handle:
        handle.write(text)
os.symlink(HOST, "/home/user/race/link")
swapping = threading.Event()
swapping.set()
def swap():
    real, link = b"/home/user/race/real", b"/home/user/race/link"
    while swapping.is_set():
        exchange(real, link)
threading.Thread(target=swap, daemon=True).start()
print("swapping")
"""


class Host:
    """The host directory the link points at, and what must stay as it is in it."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir()
        (directory / "marker.txt").write_text(HOST_MARKER)
        (directory / "victim.txt").write_text("host victim")
        (directory / "host-only.txt").write_text("host only")
        self.names = sorted(path.name for path in directory.iterdir())

    def assert_untouched(self) -> None:
        assert sorted(path.name for path in self.directory.iterdir()) == self.names
        assert (self.directory / "marker.txt").read_text() == HOST_MARKER
        assert (self.directory / "victim.txt").read_text() == "host victim"


@pytest.fixture(scope="module")
def isolated(server: RunningServer) -> RunningServer:
    if server.isolation != "bwrap":
        pytest.skip("bubblewrap does not work on this host: sandbox code would run on it")
    return server


@dataclass
class Race:
    api: httpx.Client
    host: Host


@pytest.fixture
def race(isolated: RunningServer, tmp_path: Path) -> Iterator[Race]:
    """A sandbox whose code swaps `race/real` with a link to a host directory, and an API
    client aimed at it."""
    host = Host(tmp_path / "host")
    sandbox = CodeInterpreterSandbox.create(endpoint=isolated.url, token=isolated.token)
    try:
        results = sandbox.context.execute(f"HOST = {str(host.directory)!r}\n{SWAPPER}")
        assert results["results"][0]["text"] == "swapping\n", results
        headers = {"Authorization": f"Bearer {isolated.token}"}
        base = f"{isolated.url}/sandboxes/{sandbox.sandbox_id}"
        with httpx.Client(base_url=base, headers=headers, timeout=30) as api:
            yield Race(api, host)
        sandbox.context.execute("swapping.clear()")
    finally:
        sandbox.delete()
        sandbox.close()
    host.assert_untouched()


def hammer(attempt: Callable[[int], httpx.Response], escaped: Callable[[httpx.Response], bool]):
    """Call `attempt(n)` for SECONDS_PER_OPERATION; fail on a server error or an escape."""
    deadline = time.monotonic() + SECONDS_PER_OPERATION
    count = 0
    while time.monotonic() < deadline:
        response = attempt(count)
        count += 1
        assert response.status_code < 500, response.text
        assert not escaped(response), f"escaped after {count} tries: {response.text[:200]}"
    assert count > 20


def shows_marker(response: httpx.Response) -> bool:
    return "HOST-MARKER" in response.text or "host-only" in response.text


def test_read_never_returns_a_host_file(race):
    api = race.api
    hammer(lambda _: api.get("/files", params={"path": f"{REAL}/marker.txt"}), shows_marker)


def test_download_never_returns_a_host_file(race):
    api = race.api
    path = f"{REAL}/marker.txt"
    hammer(lambda _: api.get("/filesystem/download", params={"path": path}), shows_marker)


def test_stat_never_describes_a_host_file(race):
    api = race.api
    size = len(HOST_MARKER)

    def describes_host(response: httpx.Response) -> bool:
        return response.status_code == 200 and response.json()["size"] == size

    hammer(
        lambda _: api.get("/filesystem/stat", params={"path": f"{REAL}/marker.txt"}), describes_host
    )


def test_list_never_shows_a_host_directory(race):
    api = race.api
    hammer(lambda _: api.get("/filesystem", params={"path": REAL, "depth": 2}), shows_marker)


def test_write_never_makes_a_host_file(race):
    api, host = race.api, race.host
    hammer(
        lambda n: api.post("/files", json={"path": f"{REAL}/written-{n}.txt", "content": "x"}),
        lambda _: len(list(host.directory.iterdir())) != len(host.names),
    )


def test_upload_never_makes_a_host_file(race):
    api, host = race.api, race.host

    def upload(n: int) -> httpx.Response:
        data = {"path": f"{REAL}/uploaded-{n}.txt"}
        return api.post("/filesystem/upload", files={"file": b"x"}, data=data)

    hammer(upload, lambda _: len(list(host.directory.iterdir())) != len(host.names))


def test_mkdir_never_makes_a_host_directory(race):
    api, host = race.api, race.host
    hammer(
        lambda n: api.post("/filesystem/mkdir", json={"path": f"{REAL}/made-{n}"}),
        lambda _: len(list(host.directory.iterdir())) != len(host.names),
    )


def test_move_never_takes_a_host_file_in(race):
    api, host = race.api, race.host
    hammer(
        lambda n: api.post(
            "/filesystem/move",
            json={"source": f"{REAL}/victim.txt", "destination": f"/home/user/loot-{n}.txt"},
        ),
        lambda _: not (host.directory / "victim.txt").exists(),
    )


def test_move_never_puts_a_file_in_a_host_directory(race):
    api, host = race.api, race.host

    def move_out(n: int) -> httpx.Response:
        own = f"/home/user/own-{n}.txt"
        api.post("/files", json={"path": own, "content": "mine"}).raise_for_status()
        return api.post("/filesystem/move", json={"source": own, "destination": f"{REAL}/"})

    hammer(move_out, lambda _: len(list(host.directory.iterdir())) != len(host.names))


def test_remove_never_deletes_a_host_file(race):
    api, host = race.api, race.host
    hammer(
        lambda _: api.post("/filesystem/remove", json={"path": f"{REAL}/victim.txt"}),
        lambda _: not (host.directory / "victim.txt").exists(),
    )
