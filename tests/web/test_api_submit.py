"""``POST /api/v1/jobs``: submitting models over HTTP with the CLI's validation, against
a real Redis. No token 401, a ``read`` token 403, a ``submit`` token 201 and a job id;
the size limit holds while the body streams; a sha256 sent along is checked."""

from __future__ import annotations

import hashlib
import io
import socket
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from orchestrator.artifacts.store import artifact_digest
from orchestrator.store import models as db
from orchestrator.web.server import WebServer
from tests.services.common import free_port
from tests.web.conftest import Web, make_web

A12 = "iPhone11,8"  # no live device in these tests: its runs wait for one (and 201 all the same)
URL = "/api/v1/jobs"


@pytest.fixture
def web(tmp_path: Path, db_url: str, redis_url: str) -> Iterator[Web]:
    yield from make_web(tmp_path, db_url, broker_url=redis_url)


def package_tar(package: Path) -> bytes:
    """An .mlpackage as a client sends it: an uncompressed tar of the directory."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        tar.add(package, arcname=package.name)
    return out.getvalue()


def jobs(web: Web) -> int:
    with web.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(db.Job)) or 0)


def test_no_token_401_read_403_submit_201_with_a_job_id(web: Web, samples):
    client = web.client()
    model = samples["conv10x10_nn.mlmodel"]
    files = {"models": (model.name, model.read_bytes())}
    form = {"devices": A12}

    assert client.post(URL, files=files, data=form).status_code == 401
    assert client.post(URL, files=files, data=form, headers=web.auth("read")).status_code == 403
    assert jobs(web) == 0

    made = client.post(URL, files=files, data=form, headers=web.auth("submit"))
    assert made.status_code == 201, made.text
    body = made.json()
    assert (body["runs"], body["waiting"]) == (1, 1)
    assert made.headers["location"] == f"/api/v1/jobs/{body['job']}"
    report = client.get(f"/api/v1/jobs/{body['job']}/report", headers=web.auth("read")).json()
    (row,) = report["rows"]
    assert row["model"] == model.name and row["device_class"] == A12
    assert row["sha256"] == hashlib.sha256(model.read_bytes()).hexdigest()
    assert row["status"] == "waiting"


def test_an_mlpackage_comes_as_a_tar_and_gets_the_cli_sha256(web: Web, samples):
    package = samples["conv10x10.mlpackage"]
    made = web.client().post(
        URL,
        files={"models": (f"{package.name}.tar", package_tar(package))},
        data={"devices": A12, "iterations": "10", "bisect": "never"},
        headers=web.auth("admin"),
    )
    assert made.status_code == 201, made.text
    report = web.client().get(f"/api/v1/jobs/{made.json()['job']}/report", headers=web.auth("read"))
    (row,) = report.json()["rows"]
    assert row["model"] == package.name
    assert row["sha256"] == artifact_digest(package)[0]  # what `anefarm submit` would store


def test_a_sha256_sent_along_is_checked(web: Web, samples):
    model = samples["conv10x10_nn.mlmodel"]
    data = model.read_bytes()
    client, headers = web.client(), web.auth("submit")
    files = {"models": (model.name, data)}
    wrong = client.post(
        URL, files=files, data={"devices": A12, "sha256": "0" * 64}, headers=headers
    )
    assert wrong.status_code == 400
    assert "arrived with sha256" in wrong.json()["error"]["message"]
    assert jobs(web) == 0
    right = hashlib.sha256(data).hexdigest()
    ok = client.post(URL, files=files, data={"devices": A12, "sha256": right}, headers=headers)
    assert ok.status_code == 201, ok.text


@pytest.mark.parametrize(
    ("name", "payload", "form", "message"),
    [
        ("broken.mlmodel", b"\x08\x07garbage", {}, "broken.mlmodel"),
        ("notes.txt", b"hello", {}, "not a model"),
        ("m.mlpackage.tar", b"not a tar", {}, "cannot unpack"),
        ("MODEL", b"", {"compute_units": "gpuOnly"}, "unknown compute units"),
        ("MODEL", b"", {"iterations": "many"}, "iterations must be a whole number"),
        ("MODEL", b"", {"devices": "A14"}, "no device of the farm matches 'A14'"),
        ("MODEL", b"", {"bisect": "sometimes"}, "unknown bisect mode"),
    ],
)
def test_bad_input_is_a_400_with_a_message_and_nothing_is_stored(
    web_redis: Web, samples, name, payload, form, message
):
    if name == "MODEL":
        model = samples["conv10x10_nn.mlmodel"]
        name, payload = model.name, model.read_bytes()
    answer = web_redis.client().post(
        URL,
        files={"models": (name, payload)},
        data={"devices": A12, **form},
        headers=web_redis.auth("submit"),
    )
    assert answer.status_code == 400, answer.text
    assert message in answer.json()["error"]["message"], answer.json()
    assert jobs(web_redis) == 0


@pytest.fixture
def web_redis(tmp_path: Path, sqlite_url: str, redis_url: str) -> Iterator[Web]:
    yield from make_web(tmp_path, sqlite_url, broker_url=redis_url)


def test_a_package_tar_that_escapes_is_refused(web_redis: Web, tmp_path: Path):
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        info = tarfile.TarInfo("../../escaped")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    answer = web_redis.client().post(
        URL,
        files={"models": ("evil.mlpackage.tar", out.getvalue())},
        data={"devices": A12},
        headers=web_redis.auth("submit"),
    )
    assert answer.status_code == 400 and "cannot unpack" in answer.json()["error"]["message"]
    assert not list(Path("/tmp").glob("escaped")) and not (tmp_path / "escaped").exists()


def test_no_model_and_not_multipart(web_redis: Web):
    client, headers = web_redis.client(), web_redis.auth("submit")
    empty = client.post(URL, files={"other": ("x", b"")}, data={"devices": A12}, headers=headers)
    assert empty.status_code == 400 and "no model uploaded" in empty.json()["error"]["message"]
    as_json = client.post(URL, json={"models": []}, headers=headers)
    assert as_json.status_code == 415


def test_without_a_broker_submitting_is_503_before_the_upload_is_read(web_sqlite: Web, samples):
    model = samples["conv10x10_nn.mlmodel"]
    answer = web_sqlite.client().post(
        URL, files={"models": (model.name, model.read_bytes())}, headers=web_sqlite.auth("submit")
    )
    assert answer.status_code == 503
    assert "ANEFARM_BROKER_URL" in (answer.json()["error"]["hint"] or "")


def _raw_request(url: str, head: str, first: bytes) -> bytes:
    """Send the headers and the first part of a body, never the rest; what comes back."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=15) as sock:
        sock.sendall(head.encode() + first)
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
        return answer


def test_the_size_limit_holds_while_the_body_streams(web_redis: Web):
    limit = 4096
    settings = web_redis.settings.model_copy(update={"max_model_bytes": limit})
    token = web_redis.token("submit", name="streamer")
    server = WebServer(settings, "127.0.0.1", 0, log_requests=False).start()
    try:
        boundary = "anefarmboundary"
        part = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="models";'
            f' filename="big.mlmodel"\r\nContent-Type: application/octet-stream\r\n\r\n'
        ).encode() + b"\0" * (limit + 1000)
        chunk = f"{len(part):x}\r\n".encode() + part + b"\r\n"
        head = (
            f"POST {URL} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
            "Transfer-Encoding: chunked\r\n\r\n"
        )
        # A body of unknown length whose file passes the limit: 413 while the client has
        # not finished sending (it never does here).
        answer = _raw_request(server.url, head, chunk)
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
        # ...and the connection closes: the server does not drain the rest to keep it.
        assert b"\r\nconnection: close\r\n" in answer.lower(), answer[:400]
        # A body announced larger than any allowed one: 413 before a byte of it is read.
        head = (
            f"POST {URL} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
            f"Content-Length: {10**12}\r\n\r\n"
        )
        answer = _raw_request(server.url, head, b"")
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    finally:
        server.stop()
    assert jobs(web_redis) == 0


def test_a_broker_that_is_down_is_503_with_a_hint(web_sqlite: Web, samples):
    closed_port = free_port()  # nothing listens there
    model = samples["conv10x10_nn.mlmodel"]
    client = web_sqlite.client(raise_errors=False, broker_url=f"redis://127.0.0.1:{closed_port}/0")
    answer = client.post(
        URL,
        files={"models": (model.name, model.read_bytes())},
        data={"devices": A12},
        headers=web_sqlite.auth("submit"),
    )
    assert answer.status_code == 503, answer.text
    error = answer.json()["error"]
    assert error["message"].startswith("cannot reach the broker") and "Redis" in error["hint"]
    assert jobs(web_sqlite) == 0


def test_a_submitted_job_is_cancelled_over_http(web_redis: Web, samples):
    client, submit = web_redis.client(), web_redis.auth("submit")
    model = samples["conv10x10_nn.mlmodel"]
    made = client.post(URL, files={"models": (model.name, model.read_bytes())},
                       data={"devices": A12}, headers=submit)  # fmt: skip
    job = made.json()["job"]
    cancelled = client.post(f"{URL}/{job[:8]}/cancel", headers=submit)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["job"] == job and len(cancelled.json()["cancelled_runs"]) == 1
    status = client.get(f"{URL}/{job}", headers=submit).json()
    assert status["status"] == "cancelled" and status["by_status"] == {"cancelled": 1}
