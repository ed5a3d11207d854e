"""Bad input gets a clear 4xx JSON error from the embedded server: never a 500, never a dead server.

Everything here talks raw HTTP to a real server, as a foreign client would.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest
from conftest import RunningServer, start_server
from fastapi.routing import APIRoute

from sandbox_kernel.server import ServerSettings, create_app

MISSING = "does-not-exist-0000"


@pytest.fixture(scope="module")
def api(server: RunningServer) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {server.token}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def sandbox_url(api: httpx.Client) -> Iterator[str]:
    """The base path of a sandbox made for this module, deleted afterwards."""
    sandbox_id = api.post("/sandboxes", json={"templateName": "errors"}).json()["sandboxId"]
    yield f"/sandboxes/{sandbox_id}"
    api.delete(f"/sandboxes/{sandbox_id}")


@pytest.fixture(scope="module")
def routes(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, str]]:
    """Every (method, path template) the app serves."""
    settings = ServerSettings(root=tmp_path_factory.mktemp("routes"), token="unused")
    return sorted(
        (method, route.path)
        for route in create_app(settings).routes
        if isinstance(route, APIRoute)
        for method in route.methods
    )


def assert_error(response: httpx.Response, status: int, code: str) -> dict:
    """A protocol error: the status, a JSON body {code, message, requestId}, the id header."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"code", "message", "requestId"}
    assert body["code"] == code
    assert body["message"] and "\n" not in body["message"]
    assert body["requestId"] and response.headers["x-acs-request-id"] == body["requestId"]
    return body


def raw_json(client: httpx.Client, url: str, text: bytes) -> httpx.Response:
    return client.post(url, content=text, headers={"Content-Type": "application/json"})


# ---- unknown things


@pytest.mark.parametrize(
    ("method", "path", "options"),
    [
        ("GET", "/sandboxes/{missing}", {}),
        ("DELETE", "/sandboxes/{missing}", {}),
        ("POST", "/sandboxes/{missing}/stop", {}),
        ("GET", "/sandboxes/{missing}/health", {}),
        ("GET", "/sandboxes/{missing}/files", {"params": {"path": "/home/user/x"}}),
        ("POST", "/sandboxes/{missing}/processes/cmd", {"json": {"command": "true"}}),
        ("GET", "{sandbox}/contexts/{missing}", {}),
        ("DELETE", "{sandbox}/contexts/{missing}", {}),
        ("POST", "{sandbox}/contexts/{missing}/execute", {"json": {"code": "1"}}),
        ("POST", "{sandbox}/contexts/execute", {"json": {"code": "1", "contextId": "{missing}"}}),
        ("GET", "{sandbox}/files", {"params": {"path": "/home/user/{missing}"}}),
        ("GET", "{sandbox}/filesystem", {"params": {"path": "/home/user/{missing}"}}),
        ("GET", "{sandbox}/filesystem/stat", {"params": {"path": "/home/user/{missing}"}}),
        ("GET", "{sandbox}/filesystem/download", {"params": {"path": "/home/user/{missing}"}}),
        ("POST", "{sandbox}/filesystem/remove", {"json": {"path": "/home/user/{missing}"}}),
        (
            "POST",
            "{sandbox}/filesystem/move",
            {"json": {"source": "/home/user/{missing}", "destination": "/home/user/b"}},
        ),
        (
            "POST",
            "{sandbox}/files",
            {"json": {"path": "/home/user/{missing}/x", "content": "x", "createDir": False}},
        ),
        ("GET", "{sandbox}/processes/1", {}),
        ("DELETE", "{sandbox}/processes/1", {}),
        ("GET", "{sandbox}/processes/4194304", {}),
        ("GET", "/no/such/route", {}),
    ],
)
def test_unknown_sandbox_context_process_path_or_route_is_a_404_json_error(
    api, sandbox_url, method, path, options
):
    filled = json.loads(
        json.dumps(options).replace("{missing}", MISSING).replace("{sandbox}", sandbox_url)
    )
    url = path.format(missing=MISSING, sandbox=sandbox_url)
    assert_error(api.request(method, url, **filled), 404, "NOT_FOUND")


def test_every_error_has_its_own_request_id(api):
    first = assert_error(api.get(f"/sandboxes/{MISSING}"), 404, "NOT_FOUND")
    second = assert_error(api.get(f"/sandboxes/{MISSING}"), 404, "NOT_FOUND")
    assert first["requestId"] != second["requestId"]


# ---- malformed bodies, missing fields, wrong types


@pytest.mark.parametrize(
    "text", [b"{bad", b'{"path": "/home/user/x", "content": ', b"\xff\xfe", b"nan"]
)
def test_malformed_json_is_a_400(api, sandbox_url, text):
    body = assert_error(raw_json(api, f"{sandbox_url}/files", text), 400, "INVALID_REQUEST")
    assert "JSON" in body["message"]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/sandboxes", {}, "templateName"),
        ("{sandbox}/files", {"path": "/home/user/x"}, "content"),
        ("{sandbox}/files", {"content": "x"}, "path"),
        ("{sandbox}/filesystem/mkdir", {}, "path"),
        ("{sandbox}/filesystem/move", {"source": "/home/user/a"}, "destination"),
        ("{sandbox}/filesystem/remove", {"mode": "644"}, "path"),
        ("{sandbox}/processes/cmd", {"cwd": "/home/user"}, "command"),
        ("{sandbox}/contexts/execute", {"contextId": "x"}, "code"),
    ],
)
def test_missing_field_is_a_400_naming_it(api, sandbox_url, path, body, field):
    response = api.post(path.format(sandbox=sandbox_url), json=body)
    assert f"'{field}'" in assert_error(response, 400, "INVALID_REQUEST")["message"]


@pytest.mark.parametrize("route", ["files", "filesystem/stat", "filesystem/download"])
def test_missing_query_parameter_is_a_400_naming_it(api, sandbox_url, route):
    response = api.get(f"{sandbox_url}/{route}")
    assert "'path'" in assert_error(response, 400, "INVALID_REQUEST")["message"]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/sandboxes", {"templateName": 7}, "templateName"),
        ("/sandboxes", {"templateName": "t", "sandboxIdleTimeoutSeconds": "x"}, "sandbox"),
        ("{sandbox}/files", {"path": 5, "content": "x"}, "path"),
        ("{sandbox}/files", {"path": "/home/user/x", "content": ["x"]}, "content"),
        (
            "{sandbox}/files",
            {"path": "/home/user/x", "content": "x", "createDir": "maybe"},
            "createDir",
        ),
        ("{sandbox}/filesystem/mkdir", {"path": "/home/user/d", "parents": "maybe"}, "parents"),
        ("{sandbox}/processes/cmd", {"command": "true", "timeout": "soon"}, "timeout"),
        ("{sandbox}/processes/cmd", {"command": ["ls"]}, "command"),
        ("{sandbox}/contexts/execute", {"code": 1}, "code"),
        ("{sandbox}/contexts", {"language": {"name": "python"}}, "language"),
    ],
)
def test_wrong_type_is_a_400_naming_the_field(api, sandbox_url, path, body, field):
    response = api.post(path.format(sandbox=sandbox_url), json=body)
    assert field in assert_error(response, 400, "INVALID_REQUEST")["message"]


@pytest.mark.parametrize("body", [[1, 2], "text", 3, None])
def test_body_that_is_not_an_object_is_a_400(api, sandbox_url, body):
    response = raw_json(api, f"{sandbox_url}/files", json.dumps(body).encode())
    assert_error(response, 400, "INVALID_REQUEST")


def test_bad_query_values_are_400s(api, sandbox_url):
    for params in ({"depth": "deep"}, {"depth": "0"}, {"depth": "-3"}):
        response = api.get(f"{sandbox_url}/filesystem", params=params)
        assert "depth" in assert_error(response, 400, "INVALID_REQUEST")["message"]


@pytest.mark.parametrize("pid", ["abc", "-1", "0", "1.5"])
def test_pid_that_is_not_a_positive_integer_is_a_400(api, sandbox_url, pid):
    assert_error(api.get(f"{sandbox_url}/processes/{pid}"), 400, "INVALID_REQUEST")
    assert_error(api.delete(f"{sandbox_url}/processes/{pid}"), 400, "INVALID_REQUEST")


@pytest.mark.parametrize(
    ("route", "text", "field"),
    [
        ("files", b'{"path": "/home/user/\\ud800", "content": "x"}', "path"),
        ("files", b'{"path": "/home/user/s.txt", "content": "x\\udfff"}', "content"),
        ("processes/cmd", b'{"command": "echo \\ud800"}', "command"),
        ("processes/cmd", b'{"command": "echo a\\u0000b"}', "command"),
        ("processes/cmd", b'{"command": "true", "timeout": NaN}', "timeout"),
        ("processes/cmd", b'{"command": "true", "timeout": Infinity}', "timeout"),
        ("processes/cmd", b'{"command": "true", "timeout": -1}', "timeout"),
        ("contexts/execute", b'{"code": "1", "timeout": NaN}', "timeout"),
        ("contexts/execute", b'{"code": "1", "timeout": 0}', "timeout"),
    ],
)
def test_unusable_text_and_numbers_are_400s_naming_the_field(api, sandbox_url, route, text, field):
    response = raw_json(api, f"{sandbox_url}/{route}", text)
    assert field in assert_error(response, 400, "INVALID_REQUEST")["message"]


def test_bad_modes_and_encodings_are_400s(api, sandbox_url):
    target = "/home/user/mode.txt"
    for extra in ({"mode": "999"}, {"mode": "77777"}, {"encoding": "latin-1"}):
        body = {"path": target, "content": "x", **extra}
        assert_error(api.post(f"{sandbox_url}/files", json=body), 400, "INVALID_REQUEST")
    body = {"path": target, "content": "not base64!", "encoding": "base64"}
    assert_error(api.post(f"{sandbox_url}/files", json=body), 400, "INVALID_REQUEST")
    body = {"path": "/home/user/modedir", "mode": "8"}
    assert_error(api.post(f"{sandbox_url}/filesystem/mkdir", json=body), 400, "INVALID_REQUEST")
    assert_error(api.get(f"{sandbox_url}/files", params={"path": target}), 404, "NOT_FOUND")


# ---- paths


def path_requests(sandbox_url: str, path: str) -> list[tuple[str, str, dict]]:
    """One request per path-taking operation, each naming `path`."""
    return [
        ("GET", "files", {"params": {"path": path}}),
        ("POST", "files", {"json": {"path": path, "content": "x"}}),
        ("GET", "filesystem", {"params": {"path": path}}),
        ("GET", "filesystem/stat", {"params": {"path": path}}),
        ("GET", "filesystem/download", {"params": {"path": path}}),
        ("POST", "filesystem/mkdir", {"json": {"path": path}}),
        ("POST", "filesystem/remove", {"json": {"path": path}}),
        ("POST", "filesystem/move", {"json": {"source": path, "destination": "/tmp/moved"}}),
        ("POST", "filesystem/move", {"json": {"source": "/home/user", "destination": path}}),
        ("POST", "filesystem/upload", {"files": {"file": b"x"}, "data": {"path": path}}),
        ("POST", "processes/cmd", {"json": {"command": "pwd", "cwd": path}}),
        ("POST", "contexts", {"json": {"cwd": path}}),
    ]


@pytest.mark.parametrize("path", ["/..", "/home/user/../../../etc/passwd", "../../../../x"])
def test_path_climbing_above_the_root_is_a_403_on_every_operation(api, sandbox_url, path):
    for method, route, options in path_requests(sandbox_url, path):
        response = api.request(method, f"{sandbox_url}/{route}", **options)
        assert_error(response, 403, "FORBIDDEN")


def test_nul_byte_in_a_path_is_a_400_on_every_operation(api, sandbox_url):
    for method, route, options in path_requests(sandbox_url, "/home/user/a\x00b"):
        response = api.request(method, f"{sandbox_url}/{route}", **options)
        assert "NUL" in assert_error(response, 400, "INVALID_REQUEST")["message"]


def test_links_made_inside_the_sandbox_resolve_inside_it_never_on_the_host(
    api, sandbox_url, tmp_path
):
    outside = tmp_path / "host"
    outside.mkdir()
    (outside / "secret.txt").write_text("host secret")
    links = (
        "ln -s / escape && ln -s /etc/shadow shadow && ln -s /etc/passwd passwd"
        f" && ln -s {outside} hostdir && ln -s {outside}/secret.txt secret"
        f" && ln -s {outside}/new.txt dangling && ln -s ../../../../../../../.. climb"
    )
    made = api.post(f"{sandbox_url}/processes/cmd", json={"command": links, "cwd": "/home/user"})
    assert made.json()["result"]["exitCode"] == 0, made.text
    api.post(f"{sandbox_url}/files", json={"path": "/home/user/mine.txt", "content": "mine"})

    attempts = []
    for through_a_link in (
        "escape/etc/passwd",
        "escape/etc",
        "escape/tmp/planted.txt",
        "climb/etc/passwd",
        "climb/tmp/planted.txt",
        "hostdir/secret.txt",
        "hostdir/planted.txt",
        "shadow",
        "passwd",
        "secret",
        "dangling",
        "hostdir",
    ):
        attempts += path_requests(sandbox_url, f"/home/user/{through_a_link}")
    attempts.append(
        (
            "POST",
            "filesystem/move",
            {"json": {"source": "/home/user/mine.txt", "destination": "/home/user/hostdir"}},
        )
    )
    # Moving /home/user through a link to elsewhere would succeed and take the links along.
    attempts = [item for item in attempts if item[2].get("json", {}).get("source") != "/home/user"]
    for method, route, options in attempts:
        response = api.request(method, f"{sandbox_url}/{route}", **options)
        assert response.status_code < 500, (method, route, options, response.text)
        assert "root:" not in response.text and "host secret" not in response.text

    # The host directory is as it was; what went through a link landed in the sandbox.
    assert sorted(os.listdir(outside)) == ["secret.txt"]
    assert (outside / "secret.txt").read_text() == "host secret"
    written = api.post(
        f"{sandbox_url}/files", json={"path": "/home/user/escape/tmp/via-link.txt", "content": "in"}
    )
    assert written.status_code == 200, written.text
    read = api.get(f"{sandbox_url}/files", params={"path": "/tmp/via-link.txt"})
    assert read.json()["content"] == "in"
    through_climb = api.get(
        f"{sandbox_url}/files", params={"path": "/home/user/climb/tmp/via-link.txt"}
    )
    assert through_climb.json()["content"] == "in"

    # Listing, stat and remove describe and remove links themselves.
    relink = f"ln -s / root-link && ln -s {outside}/secret.txt secret-link"
    made = api.post(f"{sandbox_url}/processes/cmd", json={"command": relink, "cwd": "/home/user"})
    assert made.json()["result"]["exitCode"] == 0, made.text
    listing = api.get(f"{sandbox_url}/filesystem", params={"path": "/home/user"}).json()
    kinds = {entry["name"]: entry["type"] for entry in listing["entries"]}
    assert kinds["root-link"] == kinds["secret-link"] == "symlink"
    stat = api.get(f"{sandbox_url}/filesystem/stat", params={"path": "/home/user/secret-link"})
    assert stat.json()["symlinkTarget"] == f"{outside}/secret.txt"
    for link in ("root-link", "secret-link"):
        removed = api.post(f"{sandbox_url}/filesystem/remove", json={"path": f"/home/user/{link}"})
        assert removed.status_code == 200
    assert (outside / "secret.txt").read_text() == "host secret"


def test_odd_files_left_by_sandbox_code_get_4xx_answers_not_500s_or_hangs(api, sandbox_url):
    shapes = (
        "mkdir -p odd/dir/sub && cd odd && mkfifo fifo && echo f > file.txt"
        " && ln -s loop-a loop-b && ln -s loop-b loop-a && ln -s dir dir-link"
    )
    made = api.post(f"{sandbox_url}/processes/cmd", json={"command": shapes, "cwd": "/home/user"})
    assert made.json()["result"]["exitCode"] == 0, made.text
    odd = "/home/user/odd"
    attempts = [
        ("GET", "files", {"params": {"path": f"{odd}/fifo"}}),
        ("GET", "filesystem/download", {"params": {"path": f"{odd}/fifo"}}),
        ("GET", "files", {"params": {"path": f"{odd}/loop-a"}}),
        ("GET", "filesystem", {"params": {"path": f"{odd}/loop-a/x"}}),
        ("POST", "filesystem/mkdir", {"json": {"path": f"{odd}/loop-a"}}),
        ("POST", "filesystem/mkdir", {"json": {"path": f"{odd}/loop-a/x"}}),
        ("POST", "filesystem/mkdir", {"json": {"path": f"{odd}/file.txt/x"}}),
        ("POST", "files", {"json": {"path": f"{odd}/loop-a/x", "content": "x"}}),
        ("POST", "files", {"json": {"path": f"{odd}/file.txt/x", "content": "x"}}),
        (
            "POST",
            "filesystem/move",
            {"json": {"source": f"{odd}/dir", "destination": f"{odd}/file.txt"}},
        ),
        (
            "POST",
            "filesystem/move",
            {"json": {"source": f"{odd}/dir", "destination": f"{odd}/dir-link/sub/in"}},
        ),
        (
            "POST",
            "filesystem/move",
            {"json": {"source": f"{odd}/dir", "destination": f"{odd}/dir/sub"}},
        ),
        (
            "POST",
            "filesystem/upload",
            {"files": {"file": b"x"}, "data": {"path": f"{odd}/loop-a/x"}},
        ),
        ("POST", "processes/cmd", {"json": {"command": "true", "cwd": f"{odd}/loop-a"}}),
    ]
    for method, route, options in attempts:
        response = api.request(method, f"{sandbox_url}/{route}", timeout=10, **options)
        assert 400 <= response.status_code < 500, (method, route, options, response.text)
        body = assert_error(response, response.status_code, response.json()["code"])
        assert "/fs/" not in body["message"], "the message names a host path"
    listing = api.get(f"{sandbox_url}/filesystem", params={"path": odd, "depth": 5})
    assert listing.status_code == 200


async def test_unexpected_failure_is_a_500_json_error_that_keeps_the_connection(tmp_path):
    """A bug in a route must not reach the HTTP server, which would drop the connection."""
    app = create_app(ServerSettings(root=tmp_path, token="t"))

    @app.get("/fails")
    def fails() -> None:
        raise RuntimeError("a bug")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=True)
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
        response = await client.get("/fails", headers={"Authorization": "Bearer t"})
    body = assert_error(response, 500, "INTERNAL_ERROR")
    assert "a bug" in body["message"]


# ---- uploads over the limit


@pytest.fixture(scope="module")
def small_upload_server(tmp_path_factory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("small-uploads"), "--max-upload-mb", "1")
    yield running
    running.stop()


def multipart_chunks(path: str, payload: bytes) -> Iterator[bytes]:
    """A multipart body sent in chunks without a Content-Length, as a streaming client does."""
    yield (
        b'--BOUNDARY\r\nContent-Disposition: form-data; name="path"\r\n\r\n'
        + path.encode()
        + b'\r\n--BOUNDARY\r\nContent-Disposition: form-data; name="file"; filename="f"\r\n\r\n'
    )
    for start in range(0, len(payload), 64 * 1024):
        yield payload[start : start + 64 * 1024]
    yield b"\r\n--BOUNDARY--\r\n"


def test_upload_over_the_limit_is_a_413_that_leaves_no_partial_file(small_upload_server):
    headers = {"Authorization": f"Bearer {small_upload_server.token}"}
    with httpx.Client(base_url=small_upload_server.url, headers=headers, timeout=60) as client:
        sandbox_id = client.post("/sandboxes", json={"templateName": "t"}).json()["sandboxId"]
        url = f"/sandboxes/{sandbox_id}"
        target = "/home/user/big.bin"
        client.post(f"{url}/files", json={"path": target, "content": "original"})
        too_big = os.urandom(2 * 1024 * 1024)

        declared = client.post(
            f"{url}/filesystem/upload", files={"file": too_big}, data={"path": target}
        )
        assert "1 MiB" in assert_error(declared, 413, "PAYLOAD_TOO_LARGE")["message"]
        streamed = client.post(
            f"{url}/filesystem/upload",
            content=multipart_chunks(target, too_big),
            headers={"Content-Type": "multipart/form-data; boundary=BOUNDARY"},
        )
        assert_error(streamed, 413, "PAYLOAD_TOO_LARGE")
        fresh = client.post(
            f"{url}/filesystem/upload",
            content=multipart_chunks("/home/user/fresh.bin", too_big),
            headers={"Content-Type": "multipart/form-data; boundary=BOUNDARY"},
        )
        assert_error(fresh, 413, "PAYLOAD_TOO_LARGE")

        assert client.get(f"{url}/files", params={"path": target}).json()["content"] == "original"
        missing = client.get(f"{url}/filesystem/stat", params={"path": "/home/user/fresh.bin"})
        assert_error(missing, 404, "NOT_FOUND")
        staging = small_upload_server.root / sandbox_id / "staging"
        assert not staging.exists() or list(staging.iterdir()) == []

        fits = os.urandom(1024 * 1024 - 1024)
        accepted = client.post(
            f"{url}/filesystem/upload", files={"file": fits}, data={"path": target}
        )
        assert accepted.json() == {"path": target, "size": len(fits)}
        assert client.get("/health").json()["status"] == "ok"


def test_malformed_uploads_are_400s(api, sandbox_url):
    url = f"{sandbox_url}/filesystem/upload"
    cases = [
        {"content": b"plain", "headers": {"Content-Type": "text/plain"}},
        {"files": {"file": b"no path field"}},
        {"data": {"path": "/home/user/no-file-part"}},
        {"files": {"file": b"x"}, "data": {"path": "/home/user"}},
        {
            "content": b'--B\r\nContent-Disposition: form-data; name="file"\r\n\r\ncut off',
            "headers": {"Content-Type": "multipart/form-data; boundary=B"},
        },
    ]
    for options in cases:
        assert_error(api.post(url, **options), 400, "INVALID_REQUEST")


# ---- authentication


def test_missing_or_wrong_token_is_a_401_on_every_route(server, sandbox_url, routes):
    sandbox_id = sandbox_url.rsplit("/", 1)[1]
    credentials = [
        {},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": f"Basic {server.token}"},
        {"X-API-Key": "wrong-token"},
        {"Authorization": "Bearer"},
    ]
    with httpx.Client(base_url=server.url, timeout=30) as anonymous:
        for method, template in routes:
            url = template.format(sandbox_id=sandbox_id, context_id="c", pid="1")
            for headers in credentials:
                response = anonymous.request(
                    method, url, headers={"Content-Type": "application/json", **headers}
                )
                assert_error(response, 401, "UNAUTHORIZED")
    assert len(routes) >= 20


def test_token_is_accepted_as_bearer_or_x_api_key(server):
    for headers in ({"Authorization": f"Bearer {server.token}"}, {"X-API-Key": server.token}):
        assert httpx.get(f"{server.url}/health", headers=headers).status_code == 200


# ---- what the SDK sends


def test_sdk_style_empty_json_body_works_on_get_delete_and_bodiless_post(api):
    empty = {"Content-Type": "application/json"}
    sandbox_id = api.post("/sandboxes", json={"templateName": "t"}).json()["sandboxId"]
    url = f"/sandboxes/{sandbox_id}"
    api.post(f"{url}/files", json={"path": "/home/user/f.txt", "content": "f"})

    for method, path in [
        ("GET", url),
        ("GET", f"{url}/health"),
        ("GET", f"{url}/files?path=/home/user/f.txt"),
        ("GET", f"{url}/filesystem?path=/home/user"),
        ("GET", f"{url}/contexts"),
        ("GET", f"{url}/processes"),
        ("POST", f"{url}/stop"),
        ("DELETE", url),
    ]:
        response = api.request(method, path, headers=empty, content=b"")
        assert response.status_code == 200, (method, path, response.text)
        assert isinstance(response.json(), (dict, list))
    assert response.json()["code"] == "SUCCESS"


# ---- bad timing


def test_deleting_a_context_during_execution_ends_it_died_with_an_error_entry(api, sandbox_url):
    context_id = api.post(f"{sandbox_url}/contexts", json={}).json()["id"]
    replies: list[httpx.Response] = []
    running = threading.Thread(
        target=lambda: replies.append(
            api.post(
                f"{sandbox_url}/contexts/{context_id}/execute",
                json={"code": "import time; time.sleep(20)"},
            )
        )
    )
    running.start()
    time.sleep(0.5)
    assert api.delete(f"{sandbox_url}/contexts/{context_id}").status_code == 200
    running.join(timeout=15)

    (reply,) = replies
    assert reply.status_code == 200, reply.text
    results = reply.json()["results"]
    assert results[-1]["type"] == "endOfExecution" and results[-1]["status"] == "died"
    assert [entry["name"] for entry in results if entry["type"] == "error"] == ["ContextClosed"]


def test_stopping_a_sandbox_while_a_context_starts_is_a_409_and_leaks_no_kernel(api):
    sandbox_id = api.post("/sandboxes", json={"templateName": "t"}).json()["sandboxId"]
    url = f"/sandboxes/{sandbox_id}"
    replies: list[httpx.Response] = []
    starting = threading.Thread(target=lambda: replies.append(api.post(f"{url}/contexts", json={})))
    starting.start()
    time.sleep(0.2)
    api.post(f"{url}/stop")
    starting.join(timeout=30)

    (reply,) = replies
    assert reply.status_code in (200, 409), reply.text
    if reply.status_code == 409:
        assert_error(reply, 409, "CONFLICT")
    time.sleep(0.3)
    assert api.get(f"{url}/processes").json() == []
    assert api.get(f"{url}/contexts").json() == []
    api.delete(url)


# ---- a small fuzz


GARBAGE_TEXT = [
    "",
    " ",
    "..",
    "/",
    "\x00",
    "%00",
    "../" * 40,
    "a" * 5000,
    "\u202e\ufeff",
    "😀",
    "\\",
    "//home//user//",
    "-1",
    "0",
    "1e309",
    "null",
    "{}",
    "<script>",
    "' OR 1=1 --",
    "/home/user/\u0000x",
]


def garbage_value(rng: random.Random, depth: int = 0):
    choice = rng.randrange(9 if depth < 2 else 6)
    if choice == 0:
        return rng.choice(GARBAGE_TEXT)
    if choice == 1:
        return rng.choice([0, -1, 2**63, -(2**70), 1.5, 1e308])
    if choice == 2:
        return rng.choice([True, False, None])
    if choice == 3:
        return "/home/user/" + rng.choice(GARBAGE_TEXT)
    if choice == 4:
        return "".join(chr(rng.randrange(1, 0x2FFF)) for _ in range(rng.randrange(1, 30)))
    if choice == 5:
        return rng.choice(["python", "javascript", "cobol", "/tmp", "/home/user"])
    if choice == 6:
        return [garbage_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice(FIELDS): garbage_value(rng, depth + 1) for _ in range(rng.randrange(1, 5))}


FIELDS = [
    "path",
    "content",
    "mode",
    "encoding",
    "createDir",
    "parents",
    "source",
    "destination",
    "command",
    "cwd",
    "timeout",
    "code",
    "contextId",
    "language",
    "templateName",
    "sandboxIdleTimeoutSeconds",
    "sandboxId",
    "depth",
]


def garbage_body(rng: random.Random) -> dict:
    kind = rng.randrange(5)
    if kind == 0:
        return {"content": bytes(rng.randrange(256) for _ in range(rng.randrange(64)))}
    if kind == 1:
        return {"content": json.dumps(garbage_value(rng)).encode()}
    if kind == 2:
        return {"content": b""}
    if kind == 3:
        return {"files": {"file": b"x"}, "data": {"path": str(garbage_value(rng))[:200]}}
    body = {rng.choice(FIELDS): garbage_value(rng) for _ in range(rng.randrange(1, 6))}
    body.pop("code", None)  # garbage stays garbage: no code runs
    return {"content": json.dumps(body).encode()}


def test_garbage_on_every_route_never_gets_a_5xx(api, routes):
    """A seeded, bounded fuzz. Its sandbox is stopped first, so nothing garbage asks runs."""
    rng = random.Random(20240601)
    sandbox_id = api.post("/sandboxes", json={"templateName": "fuzz"}).json()["sandboxId"]
    api.post(f"/sandboxes/{sandbox_id}/stop")
    sent = 0
    for method, template in routes:
        for _ in range(12):
            identifiers = {
                "sandbox_id": rng.choice([sandbox_id, sandbox_id, *GARBAGE_TEXT[4:8], "%2e%2e"]),
                "context_id": rng.choice([*GARBAGE_TEXT[8:], "c"]),
                "pid": rng.choice(["1", "-5", "abc", "99999999999999999999", "٣", "1e3"]),
            }
            if (method, template) == ("DELETE", "/sandboxes/{sandbox_id}"):
                identifiers["sandbox_id"] = "not-" + rng.choice(GARBAGE_TEXT[8:12])
            url = template.format(**{k: quote(v, safe="") for k, v in identifiers.items()})
            params = {rng.choice(FIELDS): str(garbage_value(rng))[:300] for _ in range(3)}
            options = garbage_body(rng) if method in ("POST", "PUT", "DELETE") else {}
            headers = options.pop("headers", {})
            if "content" in options:
                headers["Content-Type"] = rng.choice(
                    ["application/json", "multipart/form-data; boundary=x", "text/plain"]
                )
            response = api.request(method, url, params=params, headers=headers, **options)
            sent += 1
            assert response.status_code < 500, (method, url, params, options, response.text)
            if response.status_code >= 400:
                assert response.json()["requestId"]
    assert sent >= 200
    api.delete(f"/sandboxes/{sandbox_id}")


def test_server_still_answers_health_after_all_of_it(api, server):
    health = api.get("/health")
    assert health.status_code == 200
    assert health.json()["status"] == "ok"
    assert server.process.poll() is None


def test_null_options_mean_the_defaults_as_the_sdk_sends_them(api, sandbox_url):
    made = api.post(
        f"{sandbox_url}/filesystem/mkdir",
        json={"path": "/home/user/null/options", "parents": None, "mode": None},
    )
    assert made.status_code == 200, made.text
    written = api.post(
        f"{sandbox_url}/files",
        json={"path": "/home/user/null/x.txt", "content": "x", "mode": None, "createDir": None},
    )
    assert written.status_code == 200, written.text
    ran = api.post(
        f"{sandbox_url}/processes/cmd", json={"command": "pwd", "cwd": None, "timeout": None}
    )
    assert ran.status_code == 200, ran.text
    assert ran.json()["result"]["stdout"].strip().endswith("/home/user")
    missing = api.post(f"{sandbox_url}/filesystem/remove", json={"path": None})
    assert_error(missing, 400, "INVALID_REQUEST")
    assert "path" in missing.json()["message"]
