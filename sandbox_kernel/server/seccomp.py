"""The seccomp filter every sandbox process runs under, compiled once per server.

The list follows the container runtimes' default profile: what a sandboxed program has no
business calling, because it administers the host (modules, kexec, reboot, clocks, swap,
accounting, quotas), reaches into the kernel's less-trodden surface (bpf, perf events,
userfaultfd, io_uring, keyrings), or rearranges namespaces and mounts (mount and the new
mount API, pivot_root, unshare, setns, and clone with a namespace flag). Each is answered
with EPERM; `clone3` with ENOSYS, because its flags sit behind a pointer a filter cannot
read, and every libc falls back to `clone` on ENOSYS. The filter is built with libseccomp
(through pyseccomp) and handed to bwrap as compiled BPF (`--seccomp FD`).
"""

from __future__ import annotations

import errno
import functools
import logging
import os
import tempfile

log = logging.getLogger(__name__)

DENIED_SYSCALLS = (
    # the host's administration
    "acct",
    "clock_adjtime",
    "clock_settime",
    "create_module",
    "delete_module",
    "finit_module",
    "init_module",
    "ioperm",
    "iopl",
    "kexec_file_load",
    "kexec_load",
    "nfsservctl",
    "quotactl",
    "quotactl_fd",
    "reboot",
    "settimeofday",
    "stime",
    "swapoff",
    "swapon",
    "syslog",
    "_sysctl",
    "sysfs",
    "uselib",
    "ustat",
    "vhangup",
    "vm86",
    "vm86old",
    "lookup_dcookie",
    "get_kernel_syms",
    "query_module",
    # kernel surface with a history of privilege escalations
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "add_key",
    "keyctl",
    "request_key",
    "open_by_handle_at",
    "name_to_handle_at",
    "kcmp",
    "fanotify_init",
    # namespaces and mounts
    "mount",
    "umount",
    "umount2",
    "mount_setattr",
    "move_mount",
    "open_tree",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "pivot_root",
    "chroot",
    "unshare",
    "setns",
)
NAMESPACE_FLAGS = (
    0x00020000,  # CLONE_NEWNS
    0x02000000,  # CLONE_NEWCGROUP
    0x04000000,  # CLONE_NEWUTS
    0x08000000,  # CLONE_NEWIPC
    0x10000000,  # CLONE_NEWUSER
    0x20000000,  # CLONE_NEWPID
    0x40000000,  # CLONE_NEWNET
)


class SeccompUnavailable(RuntimeError):
    """No libseccomp on this host, so no filter can be built."""


@functools.cache
def compiled_filter() -> bytes:
    """The filter as BPF instructions for this machine's architecture."""
    try:
        import pyseccomp as seccomp
    except (ImportError, OSError) as error:  # pyseccomp loads libseccomp.so when imported
        raise SeccompUnavailable(f"libseccomp cannot be loaded ({error})") from None
    denied = seccomp.ERRNO(errno.EPERM)
    rules = seccomp.SyscallFilter(seccomp.ALLOW)
    for name in DENIED_SYSCALLS:
        try:
            rules.add_rule(denied, name)
        except (OSError, ValueError, RuntimeError):
            log.debug("no syscall %s on this architecture", name)
    for flag in NAMESPACE_FLAGS:
        rules.add_rule(denied, "clone", seccomp.Arg(0, seccomp.MASKED_EQ, flag, flag))
    rules.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
    with tempfile.TemporaryFile() as compiled:
        rules.export_bpf(compiled)
        compiled.seek(0)
        return compiled.read()


def filter_descriptor() -> int:
    """A fresh readable descriptor holding the compiled filter, for one bwrap to consume.

    bwrap reads its `--seccomp` fd to the end, so every launch needs its own; a pipe holds
    the program (a few KB) without touching the disk. The caller closes it after the launch.
    """
    program = compiled_filter()
    reader, writer = os.pipe()
    try:
        os.write(writer, program)
    finally:
        os.close(writer)
    return reader
