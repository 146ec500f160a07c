"""Figures of the HTTP API and the model downloads (issue 19; no targets: figures only).

1. ``GET /api/v1/jobs/<job>/report`` of a finished job of 200 models × 12 device classes
   (rows written into SQLite by tests/web/pages/synthetic.py), through the real app with a
   read token, beside ``report.build_report`` called directly (what the API adds).
2. ``GET /artifacts/<sha256>`` of a 256 MiB blob over loopback from uvicorn: raw, and
   through the agent's fetcher (sha256 verified while streaming, into its cache).
3. ``POST /api/v1/jobs``: receiving a 256 MiB upload (streamed to disk and hashed), and how
   much of a 1 GiB upload is read before the 413 when the limit is 16 MiB.

    .venv/bin/python bench/api.py
"""

from __future__ import annotations

import os
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.web.pages.synthetic

import httpx
from fastapi.testclient import TestClient

from agents.fetch import ArtifactFetcher
from orchestrator.artifacts.store import ArtifactStore
from orchestrator.protocol import ModelFormat, ModelRef
from orchestrator.report import build_report
from orchestrator.settings import load_settings
from orchestrator.store.engine import make_engine, session_factory
from orchestrator.store.migrate import upgrade
from orchestrator.web import tokens
from orchestrator.web.app import create_app
from orchestrator.web.server import WebServer
from tests.web.pages import synthetic

MiB = 1024 * 1024
BLOB = 256 * MiB


def median_ms(action, times: int = 5) -> float:
    walls = []
    for _ in range(times):
        start = time.perf_counter()
        action()
        walls.append((time.perf_counter() - start) * 1000)
    return statistics.median(walls)


def report_figures(tmp: Path) -> None:
    url = f"sqlite:///{tmp / 'anefarm.db'}"
    upgrade(url)
    engine = make_engine(url)
    sessions = session_factory(engine)
    with sessions() as session:
        job = synthetic.big_job(session, models=200, classes=12)
    token = tokens.create(sessions, name="bench", role=tokens.Role.READ)
    settings = load_settings(home=tmp, database_url=url)
    headers = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(settings, sessions=sessions)) as client:
        size = len(client.get(f"/api/v1/jobs/{job}/report", headers=headers).content)
        api = median_ms(lambda: client.get(f"/api/v1/jobs/{job}/report", headers=headers), 3)

    def direct() -> None:
        with sessions() as session:
            build_report(session, str(job))

    plain = median_ms(direct, 3)
    print(f"report of 200 models × 12 classes: API {api:.0f} ms, build_report {plain:.0f} ms,"
          f" {size / MiB:.1f} MiB of JSON (median of 3)")  # fmt: skip
    engine.dispose()


def download_figures(tmp: Path) -> None:
    model = tmp / "big.mlmodel"
    with model.open("wb") as out:
        for _ in range(BLOB // MiB):
            out.write(os.urandom(MiB))
    settings = load_settings(home=tmp, database_url=f"sqlite:///{tmp / 'anefarm.db'}",
                             artifact_token="bench", max_model_bytes=2 * BLOB)  # fmt: skip
    stored = ArtifactStore(settings.resolved_artifact_dir, settings.max_model_bytes).add(model)
    server = WebServer(settings, "127.0.0.1", 0, log_requests=False).start()
    try:
        url = f"{server.url}/artifacts/{stored.sha256}"

        def raw() -> None:
            with httpx.stream("GET", url, headers={"Authorization": "Bearer bench"}) as resp:
                for _ in resp.iter_bytes(MiB):
                    pass

        raw_ms = median_ms(raw, 3)
        ref = ModelRef(sha256=stored.sha256, filename="big.mlmodel",
                       format=ModelFormat.MLMODEL, size_bytes=stored.size_bytes)  # fmt: skip
        walls = []
        for attempt in range(3):
            fetcher = ArtifactFetcher(tmp / f"cache{attempt}", base_url=server.url, token="bench")
            start = time.perf_counter()
            fetcher.fetch(ref)
            walls.append((time.perf_counter() - start) * 1000)
        fetch_ms = statistics.median(walls)
    finally:
        server.stop()
    print(f"download of {BLOB // MiB} MiB over loopback: {BLOB / MiB / raw_ms * 1000:.0f} MiB/s"
          f" raw, {BLOB / MiB / fetch_ms * 1000:.0f} MiB/s by the agent's fetcher"
          " (sha256 verified, written to its cache)")  # fmt: skip


def _upload(
    url: str, token: str, body_bytes: int, *, chunked_total: int | None = None
) -> tuple[float, int, bytes]:
    """POST a multipart body of one file of ``body_bytes`` zero bytes, by a raw socket so
    that we count what the server let us send before it answered."""
    host, port = url.removeprefix("http://").split(":")
    boundary = "benchboundary"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"models\"; "
            f"filename=\"x.bin\"\r\n\r\n").encode()  # fmt: skip
    tail = f"\r\n--{boundary}--\r\n".encode()
    request = (f"POST /api/v1/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
               f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
               f"Content-Length: {len(head) + body_bytes + len(tail)}\r\n\r\n").encode()  # fmt: skip
    sent = 0
    start = time.perf_counter()
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(request + head)
        chunk = b"\0" * MiB
        try:
            while sent < body_bytes:
                piece = chunk[: min(MiB, body_bytes - sent)]
                sock.sendall(piece)
                sent += len(piece)
            sock.sendall(tail)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed: what we count
        answer = sock.recv(4096)
    return (time.perf_counter() - start) * 1000, sent, answer.split(b"\r\n", 1)[0]


def upload_figures(tmp: Path) -> None:
    url = f"sqlite:///{tmp / 'anefarm.db'}"
    upgrade(url)
    engine = make_engine(url)
    token = tokens.create(session_factory(engine), name="bench", role=tokens.Role.SUBMIT)
    # A broker URL is only checked for presence before the upload; x.bin is then refused
    # as "not a model" (400): the time is the receiving.
    base = load_settings(home=tmp, database_url=url, broker_url="redis://127.0.0.1:1/0")
    for limit, size in ((2 * BLOB, BLOB), (16 * MiB, 1024 * MiB)):
        settings = base.model_copy(update={"max_model_bytes": limit})
        server = WebServer(settings, "127.0.0.1", 0, log_requests=False).start()
        try:
            ms, sent, status = _upload(server.url, token, size)
        finally:
            server.stop()
        print(f"upload of {size // MiB} MiB, limit {limit // MiB} MiB: {status.decode()} after"
              f" {ms:.0f} ms, {sent / MiB:.0f} MiB sent ({sent / MiB / ms * 1000:.0f} MiB/s)")  # fmt: skip
    engine.dispose()


def main() -> None:
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    for figures in (report_figures, download_figures, upload_figures):
        with tempfile.TemporaryDirectory() as tmp:
            figures(Path(tmp))


if __name__ == "__main__":
    main()
