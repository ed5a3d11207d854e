"""Each operation is described once and run blocking or awaited: the async paths never make a
blocking call, the blocking ones work inside a running loop's thread, and both open alike."""

from __future__ import annotations

import asyncio

from sandbox_kernel import CodeInterpreterSandbox
from sandbox_kernel.client.session import SandboxSession
from sandbox_kernel.client.settings import EMBEDDED, ClientSettings


async def test_async_operations_on_a_joined_sandbox_never_send_a_blocking_request(server):
    created = await CodeInterpreterSandbox.create_async(endpoint=server.url, token=server.token)
    # Joined afresh, it knows nothing of the server's extensions until it asks.
    joined = await CodeInterpreterSandbox.connect_async(
        created.sandbox_id, endpoint=server.url, token=server.token
    )
    try:
        await joined.context.create_async()
        await joined.context.connect_async()
        assert (await joined.context.complete_async("impo", 4))["matches"]
        assert "found" in await joined.context.inspect_async("print", 5)
        await joined.context.interrupt_async()
        messages = await joined.context.open_messages_async()
        await messages.aclose()
        assert "stream" in await joined.extensions_async()
        await joined.context.delete_async()
        # Every request went over the async client: no blocking client was ever made.
        assert joined.data_api._client is None
    finally:
        await joined.aclose()
        await created.delete_async()
        await created.aclose()


async def test_the_blocking_api_works_inside_a_running_event_loop(server):
    assert asyncio.get_running_loop().is_running()
    with CodeInterpreterSandbox.create(endpoint=server.url, token=server.token) as sandbox:
        sandbox.file.write("/home/user/inside.txt", "from the loop's thread")
        assert sandbox.file.read("/home/user/inside.txt")["content"] == "from the loop's thread"
        with sandbox.context.create() as context:
            reply = context.execute("print(1 + 1)", on_entry=lambda entry: None)
            assert reply["results"][0]["text"] == "2\n"


def test_a_blocking_open_sets_the_env_and_prepares_as_the_async_one_does(server):
    prepared = []

    async def prepare(sandbox: CodeInterpreterSandbox) -> None:
        await sandbox.file.write_async("/home/user/prepared.txt", "ready")
        prepared.append(sandbox.sandbox_id)

    session = SandboxSession(server.url, server.token, env={"GREETING": "hello"}, prepare=prepare)
    session.open()
    try:
        assert prepared == [session.sandbox_id]
        code = "import os; print(os.environ['GREETING'], open('prepared.txt').read())"
        reply = session.context.execute(code)
        assert reply["results"][0]["text"] == "hello ready\n"
        assert session.health["status"] == "ok" and session.health is session.sandbox.health
    finally:
        session.close()


def test_the_server_to_fall_back_on_is_handed_in(server):
    asked = []

    def fallback() -> tuple[str, str]:
        asked.append(True)
        return server.url, server.token

    settings = ClientSettings.resolve(environ={}, fallback=fallback)
    assert (settings.endpoint, settings.token, settings.source) == (
        server.url,
        server.token,
        EMBEDDED,
    )
    assert asked == [True]
    named = ClientSettings.resolve(server.url, server.token, environ={}, fallback=fallback)
    assert named.source == "argument" and asked == [True]
