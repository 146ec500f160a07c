"""A Redis set up the way deploy/ sets it up: deploy/redis/anefarm.conf included, the
users of deploy/redis/users.acl.in rendered by deploy/redis/render-acl.sh from secret
files, optionally TLS only (a CA and a server certificate made here with ``cryptography``).

Each test gets its own server (its secrets are unique, so a leak found is this test's).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import redis

from orchestrator.broker.embedded import find_redis_server
from orchestrator.errors import ServiceError
from tests.services.common import free_port, missing_service, provides
from tests.services.databases import _pg_bin

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY = REPO_ROOT / "deploy"


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    cert: Path
    key: Path


@dataclass
class SecureRedis:
    """A running redis-server with the deploy/ users; ``url(user)`` is a broker URL."""

    port: int
    passwords: dict[str, str]
    tls: TlsFiles | None
    home: Path
    process: subprocess.Popen[bytes]

    def url(self, user: str = "coordinator", *, password: str | None = None, db: int = 0) -> str:
        secret = quote(self.passwords[user] if password is None else password, safe="")
        if self.tls is None:
            return f"redis://{user}:{secret}@127.0.0.1:{self.port}/{db}"
        query = f"ssl_cert_reqs=required&ssl_ca_certs={quote(str(self.tls.ca))}"
        return f"rediss://{user}:{secret}@127.0.0.1:{self.port}/{db}?{query}"

    def client(self, user: str = "coordinator") -> redis.Redis:
        from orchestrator.protocol import livestate

        return livestate.connect(self.url(user))

    def log(self) -> str:
        path = self.home / "redis.log"
        return path.read_text(errors="replace") if path.exists() else ""


def make_tls(directory: Path) -> TlsFiles:
    """A self-signed CA and a server certificate for 127.0.0.1/localhost signed by it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "anefarm test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(directory / "ca.pem", directory / "redis.pem", directory / "redis.key")
    files.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    files.key.chmod(0o600)
    return files


def render_acl(home: Path, passwords: dict[str, str]) -> Path:
    """deploy/redis/render-acl.sh itself renders the users file from two secret files."""
    secret_dir = home / "secrets"
    secret_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    files = []
    for user in ("coordinator", "agent"):
        path = secret_dir / f"redis_{user}_password"
        path.write_text(passwords[user] + "\n")  # a trailing newline, as `echo` writes it
        path.chmod(0o600)
        files.append(str(path))
    out = home / "acl" / "users.acl"
    subprocess.run(
        ["sh", str(DEPLOY / "redis" / "render-acl.sh"), str(DEPLOY / "redis" / "users.acl.in"),
         str(out), *files],
        check=True, capture_output=True,
    )  # fmt: skip
    return out


def start_secure_redis(home: Path, *, tls: bool = False) -> SecureRedis:
    try:
        binary = find_redis_server()
    except ServiceError as error:
        missing_service(error.one_line())
    home.mkdir(parents=True, exist_ok=True)
    passwords = {
        "coordinator": "co-" + secrets.token_urlsafe(18),
        "agent": "ag-" + secrets.token_urlsafe(18),
    }
    acl = render_acl(home, passwords)
    port = free_port()
    tls_files = make_tls(home / "tls") if tls else None
    lines = [
        f"include {DEPLOY / 'redis' / 'anefarm.conf'}",
        "bind 127.0.0.1",
        f"dir {home}",
        f"logfile {home / 'redis.log'}",
        f"aclfile {acl}",
        "daemonize no",
    ]
    if tls_files is None:
        lines.append(f"port {port}")
    else:
        lines += ["port 0", f"tls-port {port}", f"tls-cert-file {tls_files.cert}",
                  f"tls-key-file {tls_files.key}", f"tls-ca-cert-file {tls_files.ca}",
                  "tls-auth-clients no"]  # fmt: skip
    config = home / "redis.conf"
    config.write_text("\n".join(lines) + "\n")
    config.chmod(0o600)
    process = subprocess.Popen([binary, str(config)], stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    server = SecureRedis(port, passwords, tls_files, home, process)
    client = server.client()
    deadline = time.monotonic() + 15
    try:
        while True:
            try:
                client.ping()
                break
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
                if time.monotonic() > deadline or process.poll() is not None:
                    process.kill()
                    pytest.fail(f"secured redis-server did not start:\n{server.log()[-2000:]}")
                time.sleep(0.05)
    finally:
        client.close()
    return server


@pytest.fixture
@provides("redis")
def secure_redis_factory(tmp_path: Path) -> Iterator[Callable[..., SecureRedis]]:
    """``factory(tls=False)`` → a running SecureRedis; all are stopped at teardown."""
    started: list[SecureRedis] = []

    def factory(*, tls: bool = False, name: str = "redis") -> SecureRedis:
        server = start_secure_redis(tmp_path / name, tls=tls)
        started.append(server)
        return server

    yield factory
    for server in started:
        server.process.terminate()
        try:
            server.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()


@pytest.fixture
def secure_redis(secure_redis_factory: Callable[..., SecureRedis]) -> SecureRedis:
    return secure_redis_factory()


@pytest.fixture
def tls_redis(secure_redis_factory: Callable[..., SecureRedis]) -> SecureRedis:
    return secure_redis_factory(tls=True, name="redis-tls")


def _wait_for_login(proc: subprocess.Popen[bytes], port: int, password: str) -> None:
    """Until role ``anefarm`` logs in with its password (the cluster is up and wants
    SCRAM); a cluster that exits or takes over 30 s fails the session."""
    import psycopg

    deadline = time.monotonic() + 30
    while proc.poll() is None and time.monotonic() < deadline:
        with contextlib.suppress(psycopg.OperationalError):
            psycopg.connect(host="127.0.0.1", port=port, user="anefarm", password=password,
                            dbname="postgres").close()  # fmt: skip
            return
        time.sleep(0.1)
    proc.kill()
    pytest.fail("PostgreSQL with SCRAM did not start")


@pytest.fixture(scope="session")
@provides("postgres")
def scram_postgres() -> Iterator[tuple[int, str]]:
    """(port, password of role ``anefarm``) of a throwaway PostgreSQL cluster that wants
    SCRAM passwords (deploy/postgresql), run as the ``postgres`` user as
    tests/services/databases.py does (initdb and postgres refuse to run as root)."""
    initdb, postgres = _pg_bin("initdb"), _pg_bin("postgres")
    if not initdb or not postgres:
        missing_service("PostgreSQL binaries not found (apt-get install postgresql)")
    as_root = os.getuid() == 0
    run_as: dict[str, Any] = (
        {"user": "postgres", "group": "postgres", "extra_groups": []} if as_root else {}
    )
    password = "pg-" + secrets.token_urlsafe(18)
    base = Path(tempfile.mkdtemp(prefix="anefarm-pg-scram-"))
    sock = base / "sock"
    sock.mkdir()
    pwfile = base / "pwfile"
    pwfile.write_text(password + "\n")
    if as_root:
        user = pwd.getpwnam("postgres")
        for path in (base, sock, pwfile):
            os.chown(path, user.pw_uid, user.pw_gid)
    pwfile.chmod(0o600)
    subprocess.run(
        [initdb, "-D", str(base / "data"), "-U", "anefarm", "--pwfile", str(pwfile),
         "--auth-host=scram-sha-256", "--auth-local=scram-sha-256", "--no-sync"],
        check=True, capture_output=True, **run_as,
    )  # fmt: skip
    pwfile.unlink()
    port = free_port()
    proc = subprocess.Popen(
        [postgres, "-D", str(base / "data"), "-p", str(port), "-k", str(sock),
         "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "ssl=off"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **run_as,
    )  # fmt: skip
    _wait_for_login(proc, port, password)
    yield port, password
    proc.send_signal(2)
    proc.wait(timeout=30)
    shutil.rmtree(base, ignore_errors=True)
