"""The server answers `health` while sandboxes and their context kernels are being made."""

from __future__ import annotations

import asyncio

import httpx

from sandbox_kernel.server.app import ServerSettings, create_app
from sandbox_kernel.server.confinement import IsolationSettings
from sandbox_kernel.server.sandboxes import SandboxRegistry
from sandbox_kernel.server.starts import StartGate

TOKEN = "load-token"


async def test_health_answers_while_a_context_start_is_held_back(tmp_path) -> None:
    registry = SandboxRegistry(tmp_path, IsolationSettings())
    registry.starts = StartGate(limit=1)
    app = create_app(ServerSettings(tmp_path, TOKEN), registry)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://127.0.0.1", headers=headers, timeout=120
    ) as client:
        created = await client.post("/sandboxes", json={"templateName": "default"})
        sandbox_id = created.json()["sandboxId"]
        try:
            async with registry.starts:
                starting = asyncio.create_task(
                    client.post(f"/sandboxes/{sandbox_id}/contexts", json={"language": "python"})
                )
                while registry.starts.waiting == 0:
                    await asyncio.sleep(0)
                health = await client.get("/health")
                assert health.status_code == 200
                assert health.json()["sandboxes"] == 1
                assert registry.starts.waiting == 1 and not starting.done()
            started = await starting
            assert started.status_code == 200, started.text
        finally:
            await registry.shutdown()
