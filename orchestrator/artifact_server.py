"""Read-only HTTP server for model artifacts, so agents on other hosts can fetch models.

``GET /artifacts/<sha256>`` streams the stored blob; a bearer token is required when
configured. Nothing else is served: no listing, no writes, no paths from the request
reach the file system except a validated sha256.
"""

from __future__ import annotations

import hmac
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

_PATH = re.compile(r"^/artifacts/([0-9a-f]{64})$")
CHUNK = 1024 * 1024


class ArtifactServer:
    """Serves ``root/<sha[:2]>/<sha>`` blobs on a background thread."""

    def __init__(self, root: Path, *, host: str = "127.0.0.1", port: int = 0, token: str | None):
        self.root = root
        self.token = token
        handler = _make_handler(root, token)
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> ArtifactServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _make_handler(root: Path, token: str | None) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "anefarm-artifacts"

        def do_GET(self) -> None:
            if token is not None:
                given = self.headers.get("Authorization", "")
                if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
                    self.send_error(401, "missing or wrong bearer token")
                    return
            match = _PATH.match(self.path)
            if not match:
                self.send_error(404)
                return
            sha = match.group(1)
            blob = root / sha[:2] / sha
            if not blob.is_file():
                self.send_error(404, "no such artifact")
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(blob.stat().st_size))
            self.end_headers()
            with blob.open("rb") as src:
                while chunk := src.read(CHUNK):
                    self.wfile.write(chunk)

        def log_message(self, format: str, *args: object) -> None:
            return  # quiet: the coordinator logs what matters

    return Handler
