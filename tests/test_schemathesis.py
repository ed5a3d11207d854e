"""Fuzz the server against its own OpenAPI document: no input may cause a server error.

Bounded: for every operation, a few dozen valid and a few dozen invalid requests, without
shrinking, within a time budget. Where an operation takes a sandbox id, half its cases aim
at a real sandbox so they get past the 404 of an unknown id; operations that would run the
generated code, start interpreters or end that sandbox keep random ids.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import httpx
import pytest
import requests
from conftest import RunningServer, start_server

schemathesis = pytest.importorskip("schemathesis")
hypothesis = pytest.importorskip("hypothesis")
from schemathesis import GenerationMode  # noqa: E402

EXAMPLES = 25  # per operation, generation mode and sandbox id choice
BUDGET_SECONDS = 90.0
NOT_ON_THE_TARGET = {
    ("POST", "/sandboxes/{sandbox_id}/contexts"),
    ("POST", "/sandboxes/{sandbox_id}/contexts/execute"),
    ("POST", "/sandboxes/{sandbox_id}/contexts/{context_id}/execute"),
    ("POST", "/sandboxes/{sandbox_id}/processes/cmd"),
    ("POST", "/sandboxes/{sandbox_id}/stop"),
    ("DELETE", "/sandboxes/{sandbox_id}"),
}

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("fuzzed"))
    yield running
    running.stop()


def auth(server: RunningServer) -> dict[str, str]:
    return {"Authorization": f"Bearer {server.token}"}


def make_target(server: RunningServer) -> str:
    """A sandbox holding a file, and names that are not UTF-8 (made on disk, as sandbox code
    would), for the cases that use a real id."""
    with httpx.Client(base_url=server.url, headers=auth(server), timeout=30) as api:
        sandbox_id = api.post("/sandboxes", json={"templateName": "fuzz"}).json()["sandboxId"]
        body = {"path": "/home/user/a.txt", "content": "a"}
        api.post(f"/sandboxes/{sandbox_id}/files", json=body).raise_for_status()
    home = os.fsencode(server.root / sandbox_id / "fs" / "home" / "user")
    for directory in (home, home + b"/odd\xfe"):
        os.makedirs(directory, exist_ok=True)
        with open(directory + b"/bad\xff", "wb") as handle:
            handle.write(b"odd")
    return sandbox_id


def test_no_generated_request_makes_the_server_fail(fuzzed):
    schema = schemathesis.openapi.from_url(
        f"{fuzzed.url}/openapi.json", headers=auth(fuzzed), timeout=30
    )
    target = make_target(fuzzed)
    deadline = time.monotonic() + BUDGET_SECONDS
    sent = 0
    session = requests.Session()

    def fuzz(operation, mode: GenerationMode, path_parameters: dict | None) -> None:
        strategy = operation.as_strategy(mode, path_parameters=path_parameters)

        @hypothesis.given(strategy)
        @hypothesis.settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            phases=[hypothesis.Phase.generate],
            suppress_health_check=list(hypothesis.HealthCheck),
        )
        def send(case) -> None:
            nonlocal sent
            if time.monotonic() > deadline:
                return
            response = case.call(
                base_url=fuzzed.url, session=session, headers=auth(fuzzed), timeout=30
            )
            sent += 1
            assert response.status_code < 500, (
                f"{case.method} {case.formatted_path} {case.query} {case.body!r:.300} -> "
                f"{response.status_code} {response.text[:300]}"
            )

        try:
            send()
        except hypothesis.errors.Unsatisfiable:
            assert mode == GenerationMode.NEGATIVE  # an operation with nothing to get wrong

    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 20
    for operation in operations:
        choices: list[dict | None] = [None]
        key = (operation.method.upper(), operation.path)
        if "{sandbox_id}" in operation.path and key not in NOT_ON_THE_TARGET:
            choices.append({"sandbox_id": target})
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            for path_parameters in choices:
                fuzz(operation, mode, path_parameters)

    assert sent > 500, f"only {sent} requests within the budget"
    assert fuzzed.process.poll() is None, "the server died"
    health = httpx.get(f"{fuzzed.url}/health", headers=auth(fuzzed), timeout=30)
    assert health.json()["status"] == "ok"
    listing = httpx.get(
        f"{fuzzed.url}/sandboxes/{target}/filesystem",
        params={"path": "/home/user"},
        headers=auth(fuzzed),
        timeout=30,
    )
    assert listing.status_code == 200
