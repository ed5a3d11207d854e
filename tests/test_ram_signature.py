"""Our client's RAM signature is the AgentRun SDK's own, byte for byte, as sent on the wire.

A recording proxy on loopback sits between the client and the real server: it keeps each
request exactly as it arrived and forwards it, so the test sees what the client sent while
the client still gets real replies.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from agentrun.sandbox.api.code_interpreter_data import CodeInterpreterDataAPI
from agentrun.utils.config import Config
from agentrun.utils.ram_signature import get_agentrun_signed_headers

from sandbox_kernel import CodeInterpreterSandbox
from sandbox_kernel.client import (
    AccessKey,
    ClientSettings,
    DataClient,
    RamSignatureAuth,
    SandboxError,
)

SIGN_TIME = datetime(2025, 3, 4, 5, 6, 7, tzinfo=timezone.utc)
ACCESS_KEY = AccessKey(
    access_key_id="LTAI-test-key-id",
    access_key_secret="test-secret/with+odd=chars",
    security_token="sts-token-123",
    region="cn-shanghai",
)
SIGNED_HEADERS = (
    "agentrun-authorization",
    "x-acs-date",
    "x-acs-content-sha256",
    "x-acs-security-token",
    "host",
)
HOP_BY_HOP = {"host", "content-length", "transfer-encoding", "connection", "content-encoding"}


@dataclass
class Recorded:
    """One request as it arrived: method, raw request target, header pairs and body."""

    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str:
        values = [value for key, value in self.headers if key.lower() == name.lower()]
        assert len(values) == 1, f"{name} sent {len(values)} times in {self.method} {self.target}"
        return values[0]

    def url(self) -> str:
        return f"http://{self.header('host')}{self.target}"


class _RelayHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _RecordingServer

    def _relay(self) -> None:
        body = self._read_body()
        self.server.recorded.append(
            Recorded(self.command, self.path, list(self.headers.items()), body)
        )
        forwarded = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        reply = httpx.request(
            self.command, self.server.target + self.path, headers=forwarded, content=body
        )
        self.send_response(reply.status_code)
        for key, value in reply.headers.items():
            if key.lower() not in HOP_BY_HOP:
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(reply.content)))
        self.end_headers()
        self.wfile.write(reply.content)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0], 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            self.rfile.readline()
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    do_GET = do_POST = do_DELETE = _relay

    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output clean."""


class _RecordingServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, target: str) -> None:
        super().__init__(("127.0.0.1", 0), _RelayHandler)
        self.target = target
        self.recorded: list[Recorded] = []


@pytest.fixture
def proxy(server) -> Iterator[_RecordingServer]:
    recording = _RecordingServer(server.url)
    thread = threading.Thread(target=recording.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield recording
    recording.shutdown()
    recording.server_close()


def proxy_url(proxy: _RecordingServer) -> str:
    return f"http://127.0.0.1:{proxy.server_address[1]}"


def sdk_signature(url: str, method: str, body: bytes | None = None, **overrides) -> dict:
    """The headers the SDK's own signer gives for a request, with our fixed sign time."""
    arguments = {
        "url": url,
        "method": method,
        "access_key_id": ACCESS_KEY.access_key_id,
        "access_key_secret": ACCESS_KEY.access_key_secret,
        "security_token": ACCESS_KEY.security_token,
        "region": ACCESS_KEY.region,
        "product": "agentrun",
        "body": body,
        "sign_time": SIGN_TIME,
        **overrides,
    }
    return get_agentrun_signed_headers(**arguments)


def sdk_url(endpoint: str, sandbox_id: str, path: str, query: dict | None = None) -> str:
    """The URL the SDK itself builds (and signs) for a data-plane call."""
    config = Config(
        data_endpoint=endpoint,
        access_key_id=ACCESS_KEY.access_key_id,
        access_key_secret=ACCESS_KEY.access_key_secret,
        region_id=ACCESS_KEY.region,
    )
    return CodeInterpreterDataAPI(sandbox_id, config=config).with_path(path, query=query)


def assert_signed_like_the_sdk(request: Recorded, expected: dict[str, str]) -> None:
    sent = {name: request.header(name) for name in SIGNED_HEADERS}
    assert sent == {name.lower(): value for name, value in expected.items()}


@pytest.fixture
def signed_sandbox(sandbox, proxy) -> Iterator[CodeInterpreterSandbox]:
    """The `sandbox` fixture's sandbox, reached through the proxy by a client that signs."""
    settings = ClientSettings(
        endpoint=proxy_url(proxy), token=sandbox.data_api.settings.token, access_key=ACCESS_KEY
    )
    auth = RamSignatureAuth(ACCESS_KEY, clock=lambda: SIGN_TIME)
    client = CodeInterpreterSandbox(
        {"sandboxId": sandbox.sandbox_id}, DataClient(settings, sandbox.sandbox_id, auth=auth)
    )
    yield client
    client.close()


def test_get_with_spaces_plus_and_unicode_in_the_query_is_signed_like_the_sdk(
    signed_sandbox, proxy
):
    path = "/home/user/a b+c/é ü & 100%=x.txt"
    signed_sandbox.file.write(path, "content")
    proxy.recorded.clear()

    assert signed_sandbox.file.read(path)["content"] == "content"

    (request,) = proxy.recorded
    assert request.method == "GET"
    expected_url = sdk_url(proxy_url(proxy), signed_sandbox.sandbox_id, "/files", {"path": path})
    assert request.url() == expected_url
    assert_signed_like_the_sdk(request, sdk_signature(expected_url, "GET"))


async def test_async_requests_are_signed_like_the_sdk_too(signed_sandbox, proxy):
    await signed_sandbox.file.write_async("/home/user/async.txt", "async")
    await signed_sandbox.file_system.stat_async("/home/user/async.txt")
    await signed_sandbox.data_api.aclose()

    post, get = proxy.recorded
    sandbox_id = signed_sandbox.sandbox_id
    post_url = sdk_url(proxy_url(proxy), sandbox_id, "/files")
    get_url = sdk_url(
        proxy_url(proxy), sandbox_id, "/filesystem/stat", {"path": "/home/user/async.txt"}
    )
    assert (post.url(), get.url()) == (post_url, get_url)
    assert_signed_like_the_sdk(post, sdk_signature(post_url, "POST", post.body))
    assert_signed_like_the_sdk(get, sdk_signature(get_url, "GET"))


def test_post_with_a_json_body_is_signed_like_the_sdk(signed_sandbox, proxy):
    signed_sandbox.file.write("/home/user/signed.txt", "signed ✓")

    (request,) = proxy.recorded
    assert request.method == "POST"
    assert json.loads(request.body)["content"] == "signed ✓"
    expected_url = sdk_url(proxy_url(proxy), signed_sandbox.sandbox_id, "/files")
    assert request.url() == expected_url
    assert_signed_like_the_sdk(request, sdk_signature(expected_url, "POST", request.body))


def test_delete_is_signed_like_the_sdk(signed_sandbox, proxy):
    started = signed_sandbox.process.cmd("sleep 30 >/dev/null 2>&1 & echo $!", "/home/user")
    pid = started["result"]["stdout"].strip()
    proxy.recorded.clear()

    signed_sandbox.process.kill(pid)

    (request,) = proxy.recorded
    assert request.method == "DELETE"
    expected_url = sdk_url(proxy_url(proxy), signed_sandbox.sandbox_id, f"/processes/{pid}")
    assert request.url() == expected_url
    assert_signed_like_the_sdk(request, sdk_signature(expected_url, "DELETE"))


def test_upload_is_signed_like_the_sdk(signed_sandbox, proxy, tmp_path):
    local = tmp_path / "data.bin"
    local.write_bytes(b"\x00\x01 upload bytes \xff")

    signed_sandbox.file_system.upload(str(local), "/home/user/uploaded.bin")

    (request,) = proxy.recorded
    assert request.method == "POST"
    assert request.header("content-type").startswith("multipart/form-data; boundary=")
    assert b"upload bytes" in request.body
    expected_url = sdk_url(proxy_url(proxy), signed_sandbox.sandbox_id, "/filesystem/upload")
    assert request.url() == expected_url
    assert_signed_like_the_sdk(request, sdk_signature(expected_url, "POST"))


def test_signature_without_a_security_token_matches_the_sdk():
    key = AccessKey(access_key_id="id-only", access_key_secret="secret", region="cn-hangzhou")
    url = "https://123.agentrun-data-ram.cn-hangzhou.aliyuncs.com/sandboxes/s1/filesystem?path=%2Fa+b&depth=2"
    ours = RamSignatureAuth(key, clock=lambda: SIGN_TIME).signed_headers(url, "GET", None)
    theirs = get_agentrun_signed_headers(
        url=url,
        method="GET",
        access_key_id="id-only",
        access_key_secret="secret",
        region="cn-hangzhou",
        product="agentrun",
        sign_time=SIGN_TIME,
    )
    assert ours == theirs
    assert "x-acs-security-token" not in ours


def test_access_key_in_the_environment_makes_the_client_sign_every_request(
    server, proxy, monkeypatch
):
    monkeypatch.setenv("AGENTRUN_ACCESS_KEY_ID", ACCESS_KEY.access_key_id)
    monkeypatch.setenv("AGENTRUN_ACCESS_KEY_SECRET", ACCESS_KEY.access_key_secret)
    monkeypatch.setenv("AGENTRUN_REGION", ACCESS_KEY.region)

    with CodeInterpreterSandbox.create(endpoint=proxy_url(proxy), token=server.token) as sandbox:
        sandbox.file.write("/home/user/env.txt", "signed by env")
        sandbox.file.read("/home/user/env.txt")
        sandbox.file_system.list("/home/user")

    methods = [request.method for request in proxy.recorded]
    assert methods[0] == "POST" and methods[-1] == "DELETE" and len(methods) >= 5
    for request in proxy.recorded:
        assert "security-token" not in request.header("agentrun-authorization").lower()
        sent_at = datetime.strptime(request.header("x-acs-date"), "%Y-%m-%dT%H:%M:%SZ")
        expected = sdk_signature(
            request.url(),
            request.method,
            security_token=None,
            sign_time=sent_at.replace(tzinfo=timezone.utc),
        )
        sent = {name: request.header(name) for name in expected}
        assert sent == expected, f"{request.method} {request.target}"


def test_missing_signer_names_the_extra_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "agentrun", None)
    monkeypatch.setitem(sys.modules, "agentrun.utils.ram_signature", None)

    with pytest.raises(SandboxError, match=r"pip install 'sandbox-kernel\[agentrun\]'"):
        RamSignatureAuth(ACCESS_KEY)
    settings = ClientSettings(endpoint="http://127.0.0.1:9", access_key=ACCESS_KEY)
    with pytest.raises(SandboxError, match=r"pip install 'sandbox-kernel\[agentrun\]'"):
        DataClient(settings)
