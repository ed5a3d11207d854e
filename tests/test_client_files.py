"""Whole-file reads and writes, and streamed uploads and downloads, against a real server."""

from __future__ import annotations

import base64
import os

import pytest

from sandbox_kernel import SandboxNotFoundError

LARGE_SIZE = 20 * 1024 * 1024
NOT_UTF8 = bytes(range(256)) + b"\xff\xfe\x00\x80"


class ProgressLog:
    """Records the (done, total) pairs a transfer reports."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int | None]] = []

    def __call__(self, done: int, total: int | None) -> None:
        self.calls.append((done, total))

    def assert_reached(self, size: int) -> None:
        done = [call[0] for call in self.calls]
        assert len(self.calls) > 2
        assert done == sorted(done)
        assert self.calls[-1] == (size, size)


def test_unicode_text_round_trips_as_utf8(sandbox):
    """Text with accents, CJK and emoji is stored as UTF-8 and read back unchanged."""
    text = "héllo wörld — 你好 🌍\nsecond line\n"
    written = sandbox.file.write("/home/user/notes/unicode.txt", text)
    assert written == {"path": "/home/user/notes/unicode.txt", "size": len(text.encode())}
    assert sandbox.file.read("/home/user/notes/unicode.txt") == {
        "path": "/home/user/notes/unicode.txt",
        "content": text,
        "encoding": "utf-8",
    }


def test_binary_bytes_written_as_base64_read_back_as_base64(sandbox):
    """Bytes that are not UTF-8 go in and come out base64-encoded, byte for byte."""
    encoded = base64.b64encode(NOT_UTF8).decode()
    written = sandbox.file.write("/home/user/blob.bin", encoded, encoding="base64")
    assert written["size"] == len(NOT_UTF8)
    reply = sandbox.file.read("/home/user/blob.bin")
    assert reply["encoding"] == "base64"
    assert base64.b64decode(reply["content"]) == NOT_UTF8


def test_base64_write_of_utf8_bytes_reads_back_as_text(sandbox):
    """The read encoding depends on the bytes stored, not on how they were sent."""
    encoded = base64.b64encode("ünï".encode()).decode()
    sandbox.file.write("/home/user/t.txt", encoded, "644", "base64")
    assert sandbox.file.read("/home/user/t.txt")["content"] == "ünï"


def test_write_applies_the_given_mode(sandbox):
    sandbox.file.write("/home/user/secret.txt", "s", mode="600")
    assert sandbox.file_system.stat("/home/user/secret.txt")["mode"] == "0600"


def test_write_with_unset_options_uses_the_defaults(sandbox):
    """`None` for mode, encoding and create_dir means 644, UTF-8 and create the directory."""
    sandbox.file.write(
        "/home/user/new/dir/t.txt", "ok ✓", mode=None, encoding=None, create_dir=None
    )
    assert sandbox.file.read("/home/user/new/dir/t.txt")["content"] == "ok ✓"
    assert sandbox.file_system.stat("/home/user/new/dir/t.txt")["mode"] == "0644"


def test_write_without_create_dir_into_missing_directory_is_not_found(sandbox):
    with pytest.raises(SandboxNotFoundError):
        sandbox.file.write("/home/user/missing/x.txt", "x", create_dir=False)
    with pytest.raises(SandboxNotFoundError):
        sandbox.file_system.stat("/home/user/missing")


async def test_async_write_and_read_text_and_binary(async_sandbox):
    """The async forms write and read UTF-8 text and base64 bytes like the sync ones."""
    await async_sandbox.file.write_async("/home/user/a/é.txt", "ça va ✓")
    text = await async_sandbox.file.read_async("/home/user/a/é.txt")
    assert (text["content"], text["encoding"]) == ("ça va ✓", "utf-8")

    encoded = base64.b64encode(NOT_UTF8).decode()
    await async_sandbox.file.write_async("/home/user/a/b.bin", encoded, encoding="base64")
    binary = await async_sandbox.file.read_async("/home/user/a/b.bin")
    assert binary["encoding"] == "base64"
    assert base64.b64decode(binary["content"]) == NOT_UTF8


def test_large_upload_and_download_are_byte_identical(sandbox, tmp_path):
    """20 MB of random bytes go up and come back unchanged, reporting progress to the end."""
    original = os.urandom(LARGE_SIZE)
    source = tmp_path / "source.bin"
    source.write_bytes(original)

    upload_progress = ProgressLog()
    uploaded = sandbox.file_system.upload(
        str(source), "/home/user/big/data.bin", progress=upload_progress
    )
    assert uploaded == {"path": "/home/user/big/data.bin", "size": LARGE_SIZE}
    upload_progress.assert_reached(LARGE_SIZE)
    assert sandbox.file_system.stat("/home/user/big/data.bin")["size"] == LARGE_SIZE

    target = tmp_path / "copy.bin"
    download_progress = ProgressLog()
    downloaded = sandbox.file_system.download(
        "/home/user/big/data.bin", str(target), progress=download_progress
    )
    assert downloaded == {"saved_path": str(target), "size": LARGE_SIZE}
    download_progress.assert_reached(LARGE_SIZE)
    assert target.read_bytes() == original
    assert sorted(path.name for path in tmp_path.iterdir()) == ["copy.bin", "source.bin"]


async def test_async_large_upload_and_download_are_byte_identical(async_sandbox, tmp_path):
    original = os.urandom(LARGE_SIZE)
    source = tmp_path / "source.bin"
    source.write_bytes(original)

    upload_progress = ProgressLog()
    uploaded = await async_sandbox.file_system.upload_async(
        str(source), "/home/user/data.bin", progress=upload_progress
    )
    assert uploaded == {"path": "/home/user/data.bin", "size": LARGE_SIZE}
    upload_progress.assert_reached(LARGE_SIZE)

    target = tmp_path / "copy.bin"
    download_progress = ProgressLog()
    downloaded = await async_sandbox.file_system.download_async(
        "/home/user/data.bin", str(target), progress=download_progress
    )
    assert downloaded == {"saved_path": str(target), "size": LARGE_SIZE}
    download_progress.assert_reached(LARGE_SIZE)
    assert target.read_bytes() == original


def test_upload_without_progress_callback(sandbox, tmp_path):
    source = tmp_path / "small.txt"
    source.write_bytes(b"small\n")
    assert sandbox.file_system.upload(str(source), "/home/user/small.txt")["size"] == 6
    assert sandbox.file.read("/home/user/small.txt")["content"] == "small\n"


def test_download_of_missing_path_leaves_no_file(sandbox, tmp_path):
    """A failed download raises not-found and leaves neither the file nor a partial one."""
    save_path = tmp_path / "never.bin"
    with pytest.raises(SandboxNotFoundError) as caught:
        sandbox.file_system.download("/home/user/nothing.bin", str(save_path))
    assert caught.value.status == 404
    assert list(tmp_path.iterdir()) == []


async def test_async_download_of_missing_path_leaves_no_file(async_sandbox, tmp_path):
    save_path = tmp_path / "never.bin"
    with pytest.raises(SandboxNotFoundError):
        await async_sandbox.file_system.download_async("/home/user/nothing.bin", str(save_path))
    assert list(tmp_path.iterdir()) == []


def test_read_of_missing_file_is_not_found(sandbox):
    with pytest.raises(SandboxNotFoundError) as caught:
        sandbox.file.read("/home/user/absent.txt")
    assert (caught.value.status, caught.value.code) == (404, "NOT_FOUND")
    assert caught.value.request_id
