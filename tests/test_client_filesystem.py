"""Listing, stat, mkdir, move and remove in a sandbox's filesystem, against a real server."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from sandbox_kernel import SandboxError, SandboxNotFoundError

ENTRY_FIELDS = {"name", "path", "type", "size", "mode", "mtime"}


@pytest.fixture
def tree(sandbox):
    """/home/user/project with a file, and a subdirectory holding a file and a directory."""
    sandbox.file.write("/home/user/project/readme.md", "# hi\n")
    sandbox.file.write("/home/user/project/src/main.py", "print(1)\n", mode="755")
    sandbox.file_system.mkdir("/home/user/project/src/pkg")
    return sandbox


def by_path(listing):
    return {entry["path"]: entry for entry in listing["entries"]}


def assert_recent(mtime: str) -> None:
    moment = datetime.fromisoformat(mtime)
    assert moment.tzinfo is not None
    assert abs(datetime.now(timezone.utc) - moment) < timedelta(minutes=5)


def test_list_depth_one_shows_direct_children_with_their_details(tree):
    listing = tree.file_system.list("/home/user/project")
    assert listing["path"] == "/home/user/project"
    assert listing["data"]["entries"] == listing["entries"]
    entries = by_path(listing)
    assert sorted(entries) == ["/home/user/project/readme.md", "/home/user/project/src"]
    readme = entries["/home/user/project/readme.md"]
    assert set(readme) >= ENTRY_FIELDS
    assert (readme["name"], readme["type"], readme["size"], readme["mode"]) == (
        "readme.md",
        "file",
        5,
        "0644",
    )
    assert_recent(readme["mtime"])
    source = entries["/home/user/project/src"]
    assert (source["name"], source["type"], source["mode"]) == ("src", "dir", "0755")


def test_list_depth_two_includes_grandchildren_as_a_flat_list(tree):
    entries = by_path(tree.file_system.list("/home/user/project", depth=2))
    assert sorted(entries) == [
        "/home/user/project/readme.md",
        "/home/user/project/src",
        "/home/user/project/src/main.py",
        "/home/user/project/src/pkg",
    ]
    main = entries["/home/user/project/src/main.py"]
    assert (main["name"], main["type"], main["size"], main["mode"]) == (
        "main.py",
        "file",
        9,
        "0755",
    )
    assert entries["/home/user/project/src/pkg"]["type"] == "dir"


def test_list_without_path_lists_home(tree):
    entries = by_path(tree.file_system.list())
    assert "/home/user/project" in entries
    assert "/home/user/project/readme.md" not in entries


def test_stat_describes_a_file_and_a_directory(tree):
    file_entry = tree.file_system.stat("/home/user/project/readme.md")
    assert {key: file_entry[key] for key in ("name", "path", "type", "size", "mode")} == {
        "name": "readme.md",
        "path": "/home/user/project/readme.md",
        "type": "file",
        "size": 5,
        "mode": "0644",
    }
    assert_recent(file_entry["mtime"])
    directory = tree.file_system.stat("/home/user/project/src")
    assert (directory["name"], directory["type"]) == ("src", "dir")
    assert set(directory) >= ENTRY_FIELDS


def test_mkdir_creates_missing_parents(sandbox):
    sandbox.file_system.mkdir("/home/user/a/b/c")
    assert sandbox.file_system.stat("/home/user/a/b")["type"] == "dir"
    assert sandbox.file_system.stat("/home/user/a/b/c")["type"] == "dir"


def test_mkdir_with_unset_options_uses_the_defaults(sandbox):
    """`parents=None, mode=None` (the seed's Optional options) mean parents and 0755."""
    sandbox.file_system.mkdir("/home/user/d/e", parents=None, mode=None)
    assert sandbox.file_system.stat("/home/user/d/e")["mode"] == "0755"


def test_mkdir_applies_the_given_mode(sandbox):
    sandbox.file_system.mkdir("/home/user/private", mode="0700")
    assert sandbox.file_system.stat("/home/user/private")["mode"] == "0700"


def test_mkdir_without_parents_under_a_missing_parent_fails(sandbox):
    with pytest.raises(SandboxError) as caught:
        sandbox.file_system.mkdir("/home/user/none/child", parents=False)
    assert caught.value.status == 404
    with pytest.raises(SandboxNotFoundError):
        sandbox.file_system.stat("/home/user/none")


def test_mkdir_without_parents_under_an_existing_parent(sandbox):
    sandbox.file_system.mkdir("/home/user/single", parents=False)
    assert sandbox.file_system.stat("/home/user/single")["type"] == "dir"


def test_move_renames_a_file(tree):
    tree.file_system.move("/home/user/project/readme.md", "/home/user/project/README.md")
    assert tree.file.read("/home/user/project/README.md")["content"] == "# hi\n"
    with pytest.raises(SandboxNotFoundError):
        tree.file_system.stat("/home/user/project/readme.md")


def test_move_carries_a_directory_with_its_contents(tree):
    tree.file_system.move("/home/user/project/src", "/home/user/code")
    assert tree.file.read("/home/user/code/main.py")["content"] == "print(1)\n"
    assert tree.file_system.stat("/home/user/code/pkg")["type"] == "dir"
    with pytest.raises(SandboxNotFoundError):
        tree.file_system.stat("/home/user/project/src")


def test_remove_deletes_a_directory_recursively(tree):
    tree.file_system.remove("/home/user/project/src")
    with pytest.raises(SandboxNotFoundError):
        tree.file_system.stat("/home/user/project/src/main.py")
    entries = by_path(tree.file_system.list("/home/user/project", depth=3))
    assert sorted(entries) == ["/home/user/project/readme.md"]


def test_remove_deletes_a_file(tree):
    tree.file_system.remove("/home/user/project/readme.md")
    with pytest.raises(SandboxNotFoundError):
        tree.file.read("/home/user/project/readme.md")


@pytest.mark.parametrize(
    "operation",
    [
        pytest.param(lambda sandbox: sandbox.file_system.stat("/home/user/ghost"), id="stat"),
        pytest.param(lambda sandbox: sandbox.file_system.list("/home/user/ghost"), id="list"),
        pytest.param(lambda sandbox: sandbox.file_system.remove("/home/user/ghost"), id="remove"),
        pytest.param(
            lambda sandbox: sandbox.file_system.move("/home/user/ghost", "/home/user/b"),
            id="move",
        ),
        pytest.param(lambda sandbox: sandbox.file.read("/home/user/ghost"), id="read"),
    ],
)
def test_missing_path_is_not_found_with_status_code_and_request_id(sandbox, operation):
    with pytest.raises(SandboxNotFoundError) as caught:
        operation(sandbox)
    error = caught.value
    assert (error.status, error.code) == (404, "NOT_FOUND")
    assert error.request_id
    assert "/home/user/ghost" in str(error)


async def test_async_filesystem_story(async_sandbox):
    """mkdir, list, stat, move and remove through the async API."""
    fs = async_sandbox.file_system
    await fs.mkdir_async("/home/user/x/y")
    await async_sandbox.file.write_async("/home/user/x/y/f.txt", "abc")

    shallow = by_path(await fs.list_async("/home/user/x"))
    assert sorted(shallow) == ["/home/user/x/y"]
    deep = by_path(await fs.list_async("/home/user/x", depth=2))
    assert deep["/home/user/x/y/f.txt"]["size"] == 3

    assert (await fs.stat_async("/home/user/x/y/f.txt"))["type"] == "file"
    await fs.move_async("/home/user/x/y/f.txt", "/home/user/x/g.txt")
    assert (await fs.stat_async("/home/user/x/g.txt"))["size"] == 3

    await fs.remove_async("/home/user/x")
    with pytest.raises(SandboxNotFoundError):
        await fs.stat_async("/home/user/x")
    with pytest.raises(SandboxError) as caught:
        await fs.mkdir_async("/home/user/p/q", parents=False)
    assert caught.value.status == 404
