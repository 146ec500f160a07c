"""No credential on a command line or in a log: a farm against a Redis with a password.

Before, the supervisor started each device worker as ``python -m agents.worker …
--broker-url redis://:<password>@host/0``, readable by every user of the host through
``ps``. Now the URL travels in the worker's environment. This starts its own
redis-server with ``requirepass`` (the password in a 0600 config file, not on its own
command line), a coordinator and an agent through the CLI at log level INFO, runs a job
end to end, then looks for the password in every process's arguments and every log.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from orchestrator.broker.embedded import find_redis_server
from orchestrator.errors import ServiceError
from tests.pipeline.farm import Farm
from tests.services.common import free_port, missing_service, provides

pytestmark = [pytest.mark.slow]

A12 = "iPhone11,8"


@pytest.fixture
def password() -> str:
    return "pw-" + secrets.token_hex(16)  # unique: any occurrence found is a leak


@pytest.fixture
@provides("redis")
def redis_with_password(tmp_path: Path, password: str) -> Iterator[str]:
    """URL of a private redis-server that refuses clients without the password."""
    try:
        binary = find_redis_server()
    except ServiceError as error:
        missing_service(error.one_line())
    home = tmp_path / "redis"
    home.mkdir()
    port = free_port()
    config = home / "redis.conf"
    config.touch(mode=0o600)
    config.write_text(
        f'port {port}\nbind 127.0.0.1\nrequirepass {password}\nsave ""\n'
        f"appendonly no\ndaemonize no\ndir {home}\nlogfile {home / 'redis.log'}\n"
    )
    server = subprocess.Popen([binary, str(config)], stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    url = f"redis://:{password}@127.0.0.1:{port}/0"
    try:
        client = redis.Redis.from_url(url, socket_timeout=1)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.exceptions.ConnectionError:
                if time.monotonic() > deadline or server.poll() is not None:
                    pytest.fail(f"redis-server with requirepass did not start on port {port}")
                time.sleep(0.05)
        with pytest.raises(redis.exceptions.AuthenticationError):  # the password is required
            redis.Redis(port=port).ping()
        client.close()
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


# Farm.at starts the agent's Celery workers in the test body
@pytest.mark.celery
def test_no_password_in_process_arguments_or_logs(tmp_path, redis_with_password, password, samples):
    farm = Farm.at(tmp_path, redis_with_password)
    name = "agent-" + secrets.token_hex(4)  # tells our workers from other tests' on the host
    try:
        farm.start_coordinator("--loglevel", "INFO")
        # Farm.start_agent, plus INFO so every start-up line of ours is written.
        farm._spawn(name, "agent", "--simulate", f"{A12}=2", "--name", name, "--loglevel", "INFO")
        farm.wait_devices(2)
        out = farm.cli("submit", str(samples["conv10x10.mlpackage"]), "--devices", A12,
                       "--iterations", "5", "--warmup", "1", "--json")  # fmt: skip
        report = farm.wait_job(json.loads(out.stdout)["job"], timeout=120)
        assert [row["status"] for row in report["rows"]] == ["succeeded"]  # works with a password

        # ww: full command lines (ps cuts them to 80 columns without a terminal).
        ps = subprocess.run(["ps", "-eww", "-o", "pid,ppid,args"], capture_output=True,
                            text=True, check=True)  # fmt: skip
        rows = [line.split(None, 2) for line in ps.stdout.splitlines()[1:]]
        ours = {pid: ppid for pid, ppid, args in rows
                if "agents.worker" in args and f"--agent {name} " in args}  # fmt: skip
        parents = {pid for pid, ppid in ours.items() if ppid not in ours}
        # A spawned pool child's command line is billiard's, not agents.worker's: found by
        # its parent, so both start methods are looked at.
        children = [pid for pid, ppid, args in rows
                    if ppid in parents and "semaphore_tracker" not in args]  # fmt: skip
        # Both device workers were looked at: each a Celery parent and its pool child.
        assert (len(parents), len(children)) == (2, 2), ps.stdout
        leaks = [line for line in ps.stdout.splitlines() if password in line]
        assert leaks == [], "the broker password is visible to every user through ps"

        logs = sorted(p for p in tmp_path.rglob("*.log") if p.is_file())
        assert {p.name for p in logs} >= {"coordinator.log", f"{name}.log", "redis.log"}
        texts = {p.name: p.read_text(errors="replace") for p in logs}
        # The logs do name the broker, masked (kombu): the check below is not vacuous.
        assert "Connected to redis://:**@127.0.0.1" in texts[f"{name}.log"]
        leaked = [log for log, text in texts.items() if password in text]
        assert leaked == [], f"the broker password is in {leaked}"
    finally:
        farm.kill()  # nothing is asserted after: no warm shutdown to wait for
