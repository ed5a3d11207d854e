"""The context kernel and its stream: a flush with nothing to send skips the IOPub thread, never
lets a message sent after it overtake output that an earlier flush is still sending; a context
moves its count to the notebook's; a kernel's log builds no record it would not show."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import pytest
import zmq
from conftest import attempt, run
from ipykernel.iostream import IOPubThread, OutStream
from jupyter_client.session import Session

from sandbox_kernel import CodeInterpreterSandbox
from sandbox_kernel.context_kernel import align_count, log_only_what_is_shown
from sandbox_kernel.prompt_stream import PromptOutStream

MARKER = [b"marker"]


class CountingThread(IOPubThread):
    """The real IOPub thread, counting what is handed to it."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.handed = 0

    def schedule(self, f) -> None:
        self.handed += 1
        super().schedule(f)


class HeldSession(Session):
    """Holds the IOPub thread inside sending a stream message until `release` is set, so a
    test can act while an earlier flush is in flight."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.sending = threading.Event()
        self.release = threading.Event()

    def send(self, stream, msg_or_type, *args, **kwargs):
        if isinstance(msg_or_type, dict) and msg_or_type.get("msg_type") == "stream":
            self.sending.set()
            self.release.wait(10)
        return super().send(stream, msg_or_type, *args, **kwargs)


@pytest.fixture
def iopub() -> Iterator[tuple[CountingThread, zmq.Socket, HeldSession]]:
    context = zmq.Context()
    publisher = context.socket(zmq.PUB)
    port = publisher.bind_to_random_port("tcp://127.0.0.1")
    subscriber = context.socket(zmq.SUB)
    subscriber.setsockopt(zmq.SUBSCRIBE, b"")
    subscriber.connect(f"tcp://127.0.0.1:{port}")
    session = HeldSession(key=b"")
    thread = CountingThread(publisher, session=session)
    thread.start()
    # A PUB socket drops what it sends before the subscription arrives: wait for it.
    while not subscriber.poll(50):
        thread.send_multipart([b"hello"])
    while subscriber.poll(200):
        subscriber.recv_multipart()
    yield thread, subscriber, session
    session.release.set()
    # ipykernel closes the thread's loop before its housekeeping task has finished being
    # cancelled, which asyncio would report at exit: not this test's business.
    thread.io_loop.asyncio_loop.set_exception_handler(lambda loop, context: None)
    thread.stop()
    thread.close()
    subscriber.close(linger=0)
    context.term()


def received(subscriber: zmq.Socket, count: int) -> list[list[bytes]]:
    frames = []
    for _ in range(count):
        assert subscriber.poll(5000), "nothing arrived"
        frames.append(subscriber.recv_multipart())
    return frames


def kind(frames: list[bytes]) -> str:
    return "marker" if frames == MARKER else frames[0].decode()


@pytest.mark.parametrize("stream_class", [OutStream, PromptOutStream])
def test_a_flush_with_nothing_written_hands_the_iopub_thread_nothing(iopub, stream_class):
    thread, _, session = iopub
    stream = stream_class(session, thread, "stdout", watchfd=False)
    before = thread.handed
    stream.flush()
    stream.flush()
    if stream_class is PromptOutStream:
        assert thread.handed == before
    else:  # ipykernel's own stream: two round trips through the thread per flush
        assert thread.handed == before + 4


def test_written_output_is_flushed_before_what_follows(iopub):
    thread, subscriber, session = iopub
    session.release.set()
    stream = PromptOutStream(session, thread, "stdout", watchfd=False)
    stream.write("hello\n")
    stream.flush()
    thread.send_multipart(MARKER)
    assert [kind(frames) for frames in received(subscriber, 2)] == ["stream.stdout", "marker"]


def test_output_still_being_sent_by_the_thread_is_not_overtaken(iopub):
    thread, subscriber, session = iopub
    stream = PromptOutStream(session, thread, "stdout", watchfd=False)
    stream.flush_interval = 0.0
    stream.write("hello\n")  # the thread's own timed flush takes the buffer...
    assert session.sending.wait(5)  # ...and is held while sending it
    releaser = threading.Timer(0.2, session.release.set)
    releaser.start()
    stream.flush()  # the buffers are empty now, yet a flush is in flight: wait for it
    thread.send_multipart(MARKER)
    releaser.join()
    assert [kind(frames) for frames in received(subscriber, 2)] == ["stream.stdout", "marker"]


class FakeHistory:
    def __init__(self) -> None:
        self.stored: list[tuple[int, str]] = []

    def store_inputs(self, count: int, source: str) -> None:
        self.stored.append((count, source))


class FakeShell:
    def __init__(self, count: int) -> None:
        self.execution_count = count
        self.history_manager = FakeHistory()


def test_a_context_moves_its_count_to_the_notebooks_with_the_inputs_it_missed():
    shell = FakeShell(3)
    align_count(
        shell,
        {"executionCount": 6, "pastInputs": [[4, "get_ipython().run_line_magic('sbx', 'ls')"]]},
    )
    assert shell.execution_count == 6
    assert shell.history_manager.stored == [
        (3, ""),
        (4, "get_ipython().run_line_magic('sbx', 'ls')"),
        (5, ""),
    ]


def test_a_context_never_moves_its_count_backward():
    shell = FakeShell(9)
    align_count(shell, {"executionCount": 4, "pastInputs": []})
    align_count(shell, {"executionCount": "not a count"})
    assert shell.execution_count == 9
    assert shell.history_manager.stored == []


def test_a_kernels_log_drops_at_once_what_its_handlers_would_not_show():
    log = logging.getLogger("test-context-kernel-app")
    log.setLevel(logging.DEBUG)  # as traitlets leaves an app's logger
    shown = logging.StreamHandler()
    shown.setLevel(logging.WARNING)
    log.addHandler(shown)
    try:
        log_only_what_is_shown(log)
        assert not log.isEnabledFor(logging.DEBUG)
        assert log.isEnabledFor(logging.WARNING)
    finally:
        log.removeHandler(shown)


def test_a_cell_cannot_change_what_its_context_kernel_imports(sandbox: CodeInterpreterSandbox):
    found = run(
        sandbox,
        "command = open('/proc/self/cmdline', 'rb').read().split(b'\\0')\n"
        "print(next(part for part in command if part.endswith(b'context_kernel.py')).decode())",
    )
    folder = found.strip().rpartition("/")[0]
    stream = f"{folder}/prompt_stream.py"
    for attack in (
        f"open({stream!r}, 'a').write('import os')",
        f"os.unlink({stream!r})",
        f"os.mkdir({folder + '/__pycache__'!r})",
    ):
        assert attempt(sandbox, attack) in ("EROFS", "EACCES", "EPERM", "EBUSY"), attack
