"""`openat2(2)` through ctypes: open a path inside a directory as if that directory were `/`.

With `RESOLVE_IN_ROOT` the kernel resolves every component, links included, inside the
directory: an absolute link or a `..` stops at it, as they do for a process chrooted there.
Linux 5.6 and later have it; the syscall number is 437 on every architecture we run on.
"""

from __future__ import annotations

import ctypes
import errno
import os

SYSCALL_OPENAT2 = 437
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_IN_ROOT = 0x10
RETRIES = 32
"""The kernel answers EAGAIN when a rename raced a `..` it resolved; trying again is safe."""


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


_libc = ctypes.CDLL(None, use_errno=True)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long
_syscall.argtypes = [ctypes.c_long, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_size_t]


class Openat2Unavailable(RuntimeError):
    """The kernel has no openat2 (older than Linux 5.6), so paths cannot be resolved safely."""


def open_in_root(root: int, path: str, flags: int, mode: int = 0) -> int:
    """A new descriptor for `path` (str, surrogateescape for undecodable bytes) resolved with
    the directory `root` as `/`; raises OSError like `os.open` does."""
    how = _OpenHow(flags | os.O_CLOEXEC, mode, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
    encoded = os.fsencode(path)
    failure = errno.EAGAIN
    for _ in range(RETRIES):
        descriptor = _syscall(SYSCALL_OPENAT2, root, encoded, ctypes.byref(how), ctypes.sizeof(how))
        if descriptor >= 0:
            return descriptor
        failure = ctypes.get_errno()
        if failure not in (errno.EAGAIN, errno.EINTR):
            break
    if failure == errno.ENOSYS:
        raise Openat2Unavailable("the file API needs openat2 (Linux 5.6 or later)")
    raise OSError(failure, os.strerror(failure))
