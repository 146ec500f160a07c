"""A coordinator host and an agent host as real processes, each with only its own
credentials: the coordinator holds the database URL and the coordinator Redis user; an
agent holds the agent Redis user (and where to fetch models) and nothing else — no
ANEFARM_DATABASE_URL in its environment, no database file in its home."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.protocol import livestate
from tests.pipeline.farm import stop_processes

REPO_ROOT = Path(__file__).resolve().parents[2]


def base_env() -> dict[str, str]:
    """This process's environment without any anefarm setting (nothing leaks in)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANEFARM_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return env


@dataclass
class Host:
    """One machine's anefarm processes: a home and the settings in its environment."""

    name: str
    home: Path
    settings: dict[str, str]
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        return {**base_env(), "ANEFARM_HOME": str(self.home), **self.settings}

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "orchestrator", *args], env=self.env,
                              capture_output=True, text=True, timeout=timeout, cwd=REPO_ROOT,
                              stdin=subprocess.DEVNULL)  # fmt: skip

    def spawn(self, label: str, *args: str) -> subprocess.Popen[bytes]:
        self.home.mkdir(parents=True, exist_ok=True)
        with (self.home / f"{label}.log").open("ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "orchestrator", *args], env=self.env, cwd=REPO_ROOT,
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )  # fmt: skip
        self.procs[label] = proc
        return proc

    def logs(self) -> str:
        return "\n".join(
            f"--- {self.name}/{p.name} ---\n{p.read_text(errors='replace')[-3000:]}"
            for p in sorted(self.home.glob("*.log"))
        )

    def check_alive(self) -> None:
        for label, proc in self.procs.items():
            if proc.poll() is not None:
                raise AssertionError(f"{self.name}/{label} exited {proc.returncode}\n{self.logs()}")

    def stop(self) -> None:
        stop_processes(self.procs)


HEARTBEAT_TTL_S = "6"  # a dead agent's devices vanish within seconds, not the default minute


def coordinator_host(
    home: Path, broker_url: str, database_url: str, token: str, **extra: str
) -> Host:
    """The coordinator's machine of docs/deploy.md: the coordinator Redis user, the database
    and the artifact token agents must present; ``extra`` ANEFARM_* settings on top."""
    return Host("coordinator-host", home, {
        "ANEFARM_BROKER_URL": broker_url,
        "ANEFARM_DATABASE_URL": database_url,
        "ANEFARM_ARTIFACT_TOKEN": token,
        "ANEFARM_HEARTBEAT_TTL_S": HEARTBEAT_TTL_S,
        **extra,
    })  # fmt: skip


def agent_host(name: str, home: Path, broker_url: str, web_port: int, token: str) -> Host:
    """A Mac with devices: the agent Redis user, the coordinator's web app to fetch models
    from and its token, and nothing of the database."""
    return Host(name, home, {
        "ANEFARM_BROKER_URL": broker_url,
        "ANEFARM_ARTIFACT_URL": f"http://127.0.0.1:{web_port}",
        "ANEFARM_ARTIFACT_TOKEN": token,
        "ANEFARM_HEARTBEAT_TTL_S": HEARTBEAT_TTL_S,
    })  # fmt: skip


def wait_devices(broker_url: str, count: int, hosts: list[Host], timeout: float = 60) -> None:
    client = livestate.connect(broker_url)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            live = livestate.live_devices(client)
            if len(live) >= count and all(d.pid for d in live):
                return
            for host in hosts:
                host.check_alive()
            time.sleep(0.2)
    finally:
        client.close()
    raise AssertionError(f"{count} devices did not come up\n" + "\n".join(h.logs() for h in hosts))


def run_job(coordinator: Host, model: Path, device_class: str, hosts: list[Host]) -> dict[str, Any]:
    """Submit through the coordinator host's CLI and wait for the job's JSON report."""
    out = coordinator.cli("submit", str(model), "--devices", device_class, "--iterations", "5",
                          "--warmup", "1", "--json")  # fmt: skip
    assert out.returncode == 0, out.stderr
    job = json.loads(out.stdout)["job"]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status = coordinator.cli("status", job, "--json")
        if status.returncode == 0 and json.loads(status.stdout).get("done"):
            report = coordinator.cli("report", job, "--json")
            assert report.returncode == 0, report.stderr
            return dict(json.loads(report.stdout))
        for host in hosts:
            host.check_alive()
        time.sleep(0.5)
    raise AssertionError(f"job {job} not done\n" + "\n".join(h.logs() for h in hosts))


def scram_database(port: int, password: str, prefix: str) -> str:
    """A fresh database on the ``scram_postgres`` cluster, as the coordinator's URL."""
    import uuid

    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(host="127.0.0.1", port=port, user="anefarm", password=password,
                         dbname="postgres", autocommit=True) as conn:  # fmt: skip
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql+psycopg://anefarm:{password}@127.0.0.1:{port}/{name}?sslmode=disable"
