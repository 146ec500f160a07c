"""``GET /artifacts/<sha256>``: the model download agents use, in the web app. The
artifact token (or an API token) lets in; only a sha256 reaches the file system; Range
and ETag work; agents fetch and verify through it (agents/fetch.py)."""

from __future__ import annotations

import hashlib

import pytest

from agents.fetch import ArtifactFetcher
from orchestrator.artifacts.store import ArtifactStore
from orchestrator.errors import ArtifactError
from orchestrator.protocol import ModelFormat, ModelRef
from orchestrator.web.server import WebServer
from tests.web.conftest import Web

ARTIFACT_TOKEN = "agents-s3cret"
DATA = bytes(range(256)) * 400  # 102 400 bytes


@pytest.fixture
def stored(web_sqlite: Web, tmp_path) -> tuple[Web, str]:
    web = Web(
        settings=web_sqlite.settings.model_copy(update={"artifact_token": ARTIFACT_TOKEN}),
        sessions=web_sqlite.sessions,
        home=web_sqlite.home,
    )
    model = tmp_path / "m.mlmodel"
    model.write_bytes(DATA)
    artifact = ArtifactStore(web.settings.resolved_artifact_dir, 10**9).add(model)
    assert artifact.sha256 == hashlib.sha256(DATA).hexdigest()
    return web, artifact.sha256


AGENT = {"Authorization": f"Bearer {ARTIFACT_TOKEN}"}


def test_the_artifact_token_downloads_the_bytes_with_the_sha256_as_etag(stored):
    web, sha = stored
    answer = web.client().get(f"/artifacts/{sha}", headers=AGENT)
    assert answer.status_code == 200
    assert answer.content == DATA
    assert answer.headers["etag"] == f'"{sha}"'
    assert answer.headers["accept-ranges"] == "bytes"
    assert answer.headers["content-type"] == "application/octet-stream"


def test_an_api_token_also_downloads_and_none_or_a_wrong_one_is_401(stored):
    web, sha = stored
    client = web.client()
    assert client.get(f"/artifacts/{sha}", headers=web.auth("read")).content == DATA
    # A header with a byte outside ASCII is a wrong token too, not a server error.
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": b"Bearer w\xe9"}):
        answer = client.get(f"/artifacts/{sha}", headers=headers)
        assert answer.status_code == 401 and "www-authenticate" in answer.headers
    open_reads = web.client(bound_host="127.0.0.1", open_reads=True)
    assert open_reads.get(f"/artifacts/{sha}").content == DATA


def test_range_requests_resume_a_download(stored):
    web, sha = stored
    client = web.client()
    part = client.get(f"/artifacts/{sha}", headers={**AGENT, "Range": "bytes=1000-1999"})
    assert part.status_code == 206
    assert part.content == DATA[1000:2000]
    assert part.headers["content-range"] == f"bytes 1000-1999/{len(DATA)}"
    tail = client.get(f"/artifacts/{sha}", headers={**AGENT, "Range": "bytes=-10"})
    assert tail.status_code == 206 and tail.content == DATA[-10:]
    beyond = client.get(f"/artifacts/{sha}", headers={**AGENT, "Range": f"bytes={len(DATA)}-"})
    assert beyond.status_code == 416
    # If-Range with another validator: the whole blob, not a piece of something else.
    stale = client.get(
        f"/artifacts/{sha}", headers={**AGENT, "Range": "bytes=0-9", "If-Range": '"other"'}
    )
    assert stale.status_code == 200 and stale.content == DATA


def test_if_none_match_answers_304_without_a_body(stored):
    web, sha = stored
    answer = web.client().get(f"/artifacts/{sha}", headers={**AGENT, "If-None-Match": f'"{sha}"'})
    assert answer.status_code == 304 and answer.content == b""
    other = web.client().get(f"/artifacts/{sha}", headers={**AGENT, "If-None-Match": '"x"'})
    assert other.status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/artifacts/..%2F..%2Fanefarm.db",
        "/artifacts/%2E%2E",
        "/artifacts/../anefarm.db",
        "/artifacts/" + "A" * 64,  # upper case: not how sha256s are stored
        "/artifacts/" + "a" * 63,
        "/artifacts/" + "a" * 64 + "/../../anefarm.db",
        "/artifacts/" + "b" * 64,  # well formed, not stored
    ],
)
def test_nothing_but_a_stored_sha256_is_served(stored, path):
    web, _ = stored
    (web.settings.resolved_artifact_dir / "anefarm.db").write_bytes(b"secret")
    answer = web.client().get(path, headers=AGENT)
    assert answer.status_code == 404, (path, answer.status_code)
    assert b"secret" not in answer.content


def test_an_agent_fetches_and_verifies_through_the_app(stored, tmp_path):
    web, sha = stored
    ref = ModelRef(
        sha256=sha, filename="m.mlmodel", format=ModelFormat.MLMODEL, size_bytes=len(DATA)
    )
    server = WebServer(web.settings, "127.0.0.1", 0, log_requests=False).start()
    try:
        fetched = ArtifactFetcher(tmp_path / "cache", base_url=server.url, token=ARTIFACT_TOKEN)
        assert fetched.fetch(ref).read_bytes() == DATA
        with pytest.raises(ArtifactError, match="401"):
            ArtifactFetcher(tmp_path / "c2", base_url=server.url, token="wrong").fetch(ref)
        # A blob changed on the server's disk is caught by the agent's own check.
        blob = web.settings.resolved_artifact_dir / sha[:2] / sha
        blob.write_bytes(DATA[:-1] + b"\x00")
        with pytest.raises(ArtifactError, match="verification"):
            ArtifactFetcher(tmp_path / "c3", base_url=server.url, token=ARTIFACT_TOKEN).fetch(ref)
        assert not [p for p in (tmp_path / "c3").rglob("*") if p.is_file()]
    finally:
        server.stop()


def test_head_tells_the_size_without_the_body(stored):
    web, sha = stored
    answer = web.client().head(f"/artifacts/{sha}", headers=AGENT)
    assert answer.status_code == 200 and answer.content == b""
    assert answer.headers["content-length"] == str(len(DATA))
    assert answer.headers["etag"] == f'"{sha}"'
