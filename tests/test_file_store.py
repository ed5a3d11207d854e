"""FileStore on its own, without a server: owners, links, deep trees, read-only places."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sandbox_kernel.server.errors import Forbidden, InvalidRequest, NotFound
from sandbox_kernel.server.files import FileStore
from sandbox_kernel.server.paths import make_directories

OWNER = (12345, 23456)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "fs"
    (root / "home" / "user").mkdir(parents=True)
    return root


def store(root: Path, **options) -> FileStore:
    return FileStore(root, root.parent / "staging", **options)


def owner_of(path: Path) -> tuple[int, int]:
    info = path.lstat()
    return info.st_uid, info.st_gid


@pytest.mark.skipif(os.geteuid() != 0, reason="giving files to another uid needs root")
def test_everything_the_api_creates_belongs_to_the_owner(root):
    files = store(root, owner=OWNER)
    files.write("/home/user/new/deeper/file.txt", "x", "600", None, True)
    files.mkdir("/home/user/made/below", parents=True, mode="0700")
    staged = root.parent / "staged"
    staged.write_bytes(b"upload")
    files.upload("/home/user/up/file.bin", staged, 6)
    files.move("/home/user/new/deeper/file.txt", "/home/user/elsewhere/moved.txt")
    for created in (
        "home/user/new",
        "home/user/new/deeper",
        "home/user/made",
        "home/user/made/below",
        "home/user/up",
        "home/user/up/file.bin",
        "home/user/elsewhere",
        "home/user/elsewhere/moved.txt",
    ):
        assert owner_of(root / created) == OWNER, created
    assert oct((root / "home/user/elsewhere/moved.txt").stat().st_mode & 0o7777) == "0o600"
    assert oct((root / "home/user/made/below").stat().st_mode & 0o7777) == "0o700"
    assert owner_of(root / "home/user") == (0, 0)  # what existed keeps its owner


@pytest.mark.skipif(os.geteuid() != 0, reason="giving files to another uid needs root")
def test_make_directories_gives_what_it_creates_to_the_owner(root):
    make_directories(root, "home/user/a/b", owner=OWNER)
    assert owner_of(root / "home/user/a") == owner_of(root / "home/user/a/b") == OWNER
    assert owner_of(root / "home/user") == (0, 0)


def test_without_an_owner_files_belong_to_the_server(root):
    store(root).write("/home/user/mine.txt", "x", None, None, True)
    assert owner_of(root / "home/user/mine.txt") == (os.geteuid(), os.getegid())


def test_links_resolve_inside_the_root(root, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("host")
    (root / "etc").mkdir()
    (root / "etc" / "secret.txt").write_text("sandbox")
    os.symlink(outside, root / "home/user/link")
    os.symlink("/etc", root / "home/user/to-etc")
    os.symlink("../../../../../../etc/secret.txt", root / "home/user/climb")
    files = store(root)
    with pytest.raises(NotFound):
        files.read("/home/user/link/secret.txt")
    assert files.read("/home/user/to-etc/secret.txt")["content"] == "sandbox"
    assert files.read("/home/user/climb")["content"] == "sandbox"
    with pytest.raises(NotFound):  # as for code: the link's target is not in the sandbox
        files.write("/home/user/link/planted.txt", "x", None, None, True)
    files.write("/home/user/to-etc/planted.txt", "x", None, None, True)
    assert os.listdir(outside) == ["secret.txt"]
    assert (root / "etc" / "planted.txt").read_text() == "x"


def test_remove_never_follows_a_link_inside_the_tree(root, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("keep")
    tree = root / "home/user/tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "file.txt").write_text("x")
    os.symlink(outside, tree / "sub" / "link")
    os.symlink(outside, tree / "link")
    store(root).remove("/home/user/tree")
    assert not tree.exists()
    assert (outside / "keep.txt").read_text() == "keep"


def test_trees_deeper_than_the_recursion_limit_list_and_remove(root):
    depth = 1500
    deep = root / "home/user/deep"
    descriptor = os.open(root / "home/user", os.O_RDONLY | os.O_DIRECTORY)
    os.mkdir("deep", dir_fd=descriptor)
    current = os.open("deep", os.O_RDONLY | os.O_DIRECTORY, dir_fd=descriptor)
    os.close(descriptor)
    for _ in range(depth):
        os.mkdir("d", dir_fd=current)
        child = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=current)
        os.close(current)
        current = child
    os.close(current)
    files = store(root)
    listing = files.list("/home/user/deep", depth + 10)
    assert len(listing["entries"]) == depth
    files.remove("/home/user/deep")
    assert not deep.exists()


def test_moving_a_directory_into_itself_is_refused(root):
    files = store(root)
    files.mkdir("/home/user/a/b", parents=True, mode=None)
    for destination in ("/home/user/a/b", "/home/user/a/b/c", "/home/user/a"):
        with pytest.raises(InvalidRequest, match="into itself"):
            files.move("/home/user/a", destination)
    assert (root / "home/user/a/b").is_dir()


def test_read_only_places_are_refused_through_links_too(root):
    (root / "usr").mkdir()
    os.symlink("/usr", root / "home/user/to-usr")
    files = store(root, read_only=["/usr"])
    for attempt in (
        lambda: files.write("/home/user/to-usr/planted", "x", None, None, True),
        lambda: files.mkdir("/home/user/to-usr/made", parents=True, mode=None),
        lambda: files.move("/home/user", "/home/user/to-usr/home"),
    ):
        with pytest.raises(Forbidden):
            attempt()
    assert os.listdir(root / "usr") == []
    files.remove("/home/user/to-usr")  # the link itself is the sandbox's own
    assert not (root / "home/user/to-usr").exists()
