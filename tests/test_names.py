"""Names that are not valid UTF-8: listed, described, read and changed through the API."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import httpx
import pytest
from conftest import RunningServer

pytestmark = pytest.mark.timeout(120)

FOLDER = "/home/user/odd-names"
BAD = b"bad\xff"
BAD_DIRECTORY = b"dir\xfe"


def encoded(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def full(name: bytes) -> bytes:
    return FOLDER.encode() + b"/" + name


@pytest.fixture
def odd(server: RunningServer, sandbox) -> Iterator[httpx.Client]:
    """A sandbox whose code made a file and a directory with names that are not UTF-8."""
    code = (
        "import os\n"
        f"os.makedirs({FOLDER!r})\n"
        f"open({full(BAD)!r}, 'wb').write(b'odd bytes')\n"
        f"os.mkdir({full(BAD_DIRECTORY)!r})\n"
        f"open({full(BAD_DIRECTORY) + b'/inner.txt'!r}, 'w').write('inner')\n"
        f"print(len(os.listdir({FOLDER.encode()!r})))"
    )
    results = sandbox.context.execute(code)["results"]
    assert results[0]["text"] == "2\n", results
    base = f"{server.url}/sandboxes/{sandbox.sandbox_id}"
    with httpx.Client(base_url=base, headers={"X-API-Key": server.token}, timeout=30) as api:
        yield api


def names_in_sandbox(sandbox) -> set[bytes]:
    code = f"print(sorted(os.listdir({FOLDER.encode()!r})))"
    text = sandbox.context.execute(f"import os\n{code}")["results"][0]["text"]
    return set(eval(text))  # a list of bytes literals printed by the cell


def test_a_folder_with_such_names_lists_with_their_bytes(odd):
    listing = odd.get("/filesystem", params={"path": FOLDER, "depth": 2})
    assert listing.status_code == 200, listing.text
    entries = {entry["path"]: entry for entry in listing.json()["entries"]}
    bad = entries[f"{FOLDER}/bad\ufffd"]
    assert (bad["name"], bad["type"], bad["size"]) == ("bad\ufffd", "file", 9)
    assert base64.b64decode(bad["nameBytes"]) == BAD
    assert base64.b64decode(bad["pathBytes"]) == full(BAD)
    inner = entries[f"{FOLDER}/dir\ufffd/inner.txt"]
    assert "nameBytes" not in inner and inner["name"] == "inner.txt"
    assert base64.b64decode(inner["pathBytes"]) == full(BAD_DIRECTORY) + b"/inner.txt"


def test_such_a_file_is_described_read_downloaded_and_removed_by_its_bytes(odd, sandbox):
    by_bytes = {"pathBytes": encoded(full(BAD))}
    stat = odd.get("/filesystem/stat", params=by_bytes)
    assert stat.status_code == 200 and stat.json()["nameBytes"] == encoded(BAD)
    assert odd.get("/files", params=by_bytes).json()["content"] == "odd bytes"
    download = odd.get("/filesystem/download", params=by_bytes)
    assert download.status_code == 200 and download.content == b"odd bytes"
    assert "filename*=utf-8''bad%EF%BF%BD" in download.headers["content-disposition"]
    removed = odd.post("/filesystem/remove", json=by_bytes)
    assert removed.status_code == 200, removed.text
    assert removed.json()["pathBytes"] == encoded(full(BAD))
    assert odd.get("/filesystem/stat", params=by_bytes).status_code == 404
    assert names_in_sandbox(sandbox) == {BAD_DIRECTORY}


def test_such_names_are_made_and_moved_by_their_bytes(odd, sandbox):
    made = odd.post("/files", json={"pathBytes": encoded(full(b"new\xfa")), "content": "x"})
    assert made.status_code == 200, made.text
    uploaded = odd.post(
        "/filesystem/upload",
        files={"file": b"up"},
        data={"pathBytes": encoded(full(b"up\xfb"))},
    )
    assert uploaded.status_code == 200, uploaded.text
    directory = odd.post("/filesystem/mkdir", json={"pathBytes": encoded(full(b"made\xfc"))})
    assert directory.status_code == 200, directory.text
    moved = odd.post(
        "/filesystem/move",
        json={"sourceBytes": encoded(full(b"new\xfa")), "destination": f"{FOLDER}/plain.txt"},
    )
    assert moved.status_code == 200 and moved.json()["source"] == f"{FOLDER}/new\ufffd"
    assert names_in_sandbox(sandbox) == {BAD, BAD_DIRECTORY, b"up\xfb", b"made\xfc", b"plain.txt"}


def test_errors_about_such_names_are_valid_json(odd):
    missing = odd.get("/filesystem/stat", params={"pathBytes": encoded(full(b"gone\xff"))})
    assert missing.status_code == 404
    assert missing.json()["message"] == f"no such file or directory: {FOLDER}/gone\ufffd"
    assert odd.get("/files", params={"pathBytes": "not base64!"}).status_code == 400
    text_path = odd.get("/filesystem/stat", params={"path": f"{FOLDER}/bad\ufffd"})
    assert text_path.status_code == 404  # U+FFFD is a character of its own, not the bad byte


def test_names_are_valid_utf8_in_the_json_itself(odd):
    raw = odd.get("/filesystem", params={"path": FOLDER}).content
    raw.decode("utf-8")
    assert b"\\udc" not in raw
