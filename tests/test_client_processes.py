"""Shell commands and the process table of a sandbox, against a real server."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from sandbox_kernel import CodeInterpreterSandbox, SandboxNotFoundError

LIST_WAIT_SECONDS = 5.0
PROCESS_FIELDS = {"pid", "ppid", "name", "cmdline", "status", "createTime", "cpuPercent"}


def only_match(processes, cmdline: str):
    """The one process whose command line is `cmdline`, or None."""
    matches = [process for process in processes if process["cmdline"] == cmdline]
    assert len(matches) <= 1, processes
    return matches[0] if matches else None


def listed_process(sandbox, cmdline: str):
    """The listed process running `cmdline` (a just-forked job may not have exec'd yet)."""
    deadline = time.monotonic() + LIST_WAIT_SECONDS
    while True:
        processes = sandbox.process.list()
        found = only_match(processes, cmdline)
        if found is not None:
            return found
        assert time.monotonic() < deadline, processes
        time.sleep(0.05)


async def listed_process_async(sandbox, cmdline: str):
    deadline = time.monotonic() + LIST_WAIT_SECONDS
    while True:
        processes = await sandbox.process.list_async()
        found = only_match(processes, cmdline)
        if found is not None:
            return found
        assert time.monotonic() < deadline, processes
        await asyncio.sleep(0.05)


def test_cmd_reports_exit_code_stdout_and_stderr(sandbox):
    reply = sandbox.process.cmd("echo out; echo err >&2; exit 3", "/home/user")
    assert reply["status"] == "completed"
    assert reply["executionId"]
    result = reply["result"]
    assert (result["exitCode"], result["stdout"], result["stderr"]) == (3, "out\n", "err\n")
    assert result["executionTimeMs"] >= 0


def test_cmd_runs_in_home(sandbox):
    result = sandbox.process.cmd("pwd", "/home/user")["result"]
    assert result["cwd"] == "/home/user"
    assert result["stdout"].strip().endswith("/home/user")


def test_cmd_runs_in_the_given_directory(sandbox):
    sandbox.file.write("/home/user/work/data.txt", "42")
    result = sandbox.process.cmd("pwd; cat data.txt", "/home/user/work")["result"]
    assert result["cwd"] == "/home/user/work"
    lines = result["stdout"].splitlines()
    assert lines[0].endswith("/home/user/work")
    assert lines[1] == "42"


def test_cmd_timeout_kills_the_command_and_returns_quickly(sandbox):
    started = time.monotonic()
    reply = sandbox.process.cmd("echo started; sleep 30", "/home/user", timeout=1)
    assert time.monotonic() - started < 5
    assert reply["status"] == "timeout"
    assert reply["result"]["exitCode"] != 0
    assert reply["result"]["stdout"] == "started\n"


@pytest.mark.parametrize(
    ("command", "cmdline"),
    [
        pytest.param("sleep 301 >/dev/null 2>&1 &", "sleep 301", id="redirected"),
        pytest.param("sleep 302 &", "sleep 302", id="inheriting-output"),
    ],
)
def test_background_process_is_listed_inspected_and_killed(sandbox, command, cmdline):
    """A job left running by a command shows in the table until it is killed."""
    started = time.monotonic()
    reply = sandbox.process.cmd(command, "/home/user")
    assert time.monotonic() - started < 5
    assert (reply["status"], reply["result"]["exitCode"]) == ("completed", 0)

    listed = listed_process(sandbox, cmdline)
    assert set(listed) >= PROCESS_FIELDS
    assert listed["name"] == "sleep"
    described = sandbox.process.get(str(listed["pid"]))
    assert (described["pid"], described["cmdline"]) == (listed["pid"], cmdline)

    sandbox.process.kill(str(listed["pid"]))
    assert all(process["pid"] != listed["pid"] for process in sandbox.process.list())
    with pytest.raises(SandboxNotFoundError) as caught:
        sandbox.process.get(str(listed["pid"]))
    assert (caught.value.status, caught.value.code) == (404, "NOT_FOUND")


def test_a_host_process_outside_the_sandbox_is_not_found(sandbox):
    """The test's own process exists on the host but is not one of the sandbox's."""
    pid = str(os.getpid())
    with pytest.raises(SandboxNotFoundError) as caught:
        sandbox.process.get(pid)
    assert caught.value.status == 404
    assert caught.value.request_id
    with pytest.raises(SandboxNotFoundError):
        sandbox.process.kill(pid)
    assert all(process["pid"] != os.getpid() for process in sandbox.process.list())


def test_processes_of_another_sandbox_are_not_visible(sandbox, server):
    sandbox.process.cmd("sleep 303 &", "/home/user")
    pid = listed_process(sandbox, "sleep 303")["pid"]
    with CodeInterpreterSandbox.create(endpoint=server.url, token=server.token) as other:
        assert all(process["pid"] != pid for process in other.process.list())
        with pytest.raises(SandboxNotFoundError):
            other.process.kill(str(pid))
    assert sandbox.process.get(str(pid))["pid"] == pid


async def test_async_cmd_list_get_and_kill(async_sandbox):
    process = async_sandbox.process
    reply = await process.cmd_async("echo hi; echo oops >&2; exit 2", "/home/user")
    assert reply["result"]["exitCode"] == 2
    assert (reply["result"]["stdout"], reply["result"]["stderr"]) == ("hi\n", "oops\n")

    timed_out = await process.cmd_async("sleep 30", "/home/user", timeout=1)
    assert timed_out["status"] == "timeout"

    await process.cmd_async("sleep 304 &", "/home/user")
    pid = (await listed_process_async(async_sandbox, "sleep 304"))["pid"]
    assert (await process.get_async(str(pid)))["name"] == "sleep"
    await process.kill_async(str(pid))
    assert all(entry["pid"] != pid for entry in await process.list_async())
    with pytest.raises(SandboxNotFoundError):
        await process.get_async(str(pid))
