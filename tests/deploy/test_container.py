"""deploy/Dockerfile, read as text (no container runtime here): multi-stage, an
unprivileged user, a base image pinned by digest, and the very install step CI runs."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = (REPO / "deploy" / "Dockerfile").read_text()


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", text)
    out = []
    for raw in joined.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _make_install_lines() -> list[str]:
    """The Makefile's pip install commands (its setup target), as CI runs them."""
    makefile = (REPO / "Makefile").read_text()
    return [line.strip() for line in makefile.splitlines()
            if line.startswith("\t$(BIN)/pip install")]  # fmt: skip


def test_the_dockerfile_installs_exactly_what_ci_installs():
    lines = _make_install_lines()
    assert any('-e ".[' in line for line in lines), lines  # the project with its extras
    runs = [rest for word, rest in _instructions(DOCKERFILE) if word == "RUN"]
    for line in lines:
        # $(BIN) in make is $BIN in the Dockerfile's shell: the same words otherwise.
        expected = shlex.split(line.replace("$(BIN)", "$BIN"))
        assert any(shlex.split(run) == expected for run in runs), (
            f"the Dockerfile does not run CI's install step {line!r}; RUN lines: {runs}"
        )


def test_multi_stage_with_a_digest_pinned_base_and_an_unprivileged_user():
    instructions = _instructions(DOCKERFILE)
    stages = [rest for word, rest in instructions if word == "FROM"]
    assert len(stages) >= 2, "multi-stage: build tools stay out of the runtime image"
    base = next(rest for word, rest in instructions if word == "ARG" and "PYTHON_IMAGE=" in rest)
    assert re.search(r"@sha256:[0-9a-f]{64}$", base), base
    assert "PLACEHOLDER" in DOCKERFILE and "docs/deploy.md" in DOCKERFILE
    users = [rest for word, rest in instructions if word == "USER"]
    assert users and users[-1].split(":")[0] not in {"root", "0"}, users
    final_stage = DOCKERFILE[DOCKERFILE.rindex("\nFROM ") :]
    assert "USER anefarm" in final_stage
    assert any(word == "HEALTHCHECK" for word, _ in instructions)


def test_with_secrets_builds_the_urls_from_files(tmp_path):
    """The image's and the units' entry point: passwords percent-encoded into the URLs
    from files, nothing on the command line."""
    redis_pw, pg_pw = "r@d/is:pw with space", "pg#pw%"
    (tmp_path / "redis").write_text(redis_pw + "\n")
    (tmp_path / "pg").write_text(pg_pw)
    (tmp_path / "token").write_text("tok-123\n")
    env = {
        "PATH": os.environ["PATH"],
        "ANEFARM_BROKER_PASSWORD_FILE": str(tmp_path / "redis"),
        "ANEFARM_BROKER_HOST": "redis.internal",
        "ANEFARM_BROKER_SCHEME": "rediss",
        "ANEFARM_DATABASE_PASSWORD_FILE": str(tmp_path / "pg"),
        "ANEFARM_DATABASE_SSLMODE": "verify-full",
        "ANEFARM_ARTIFACT_TOKEN_FILE": str(tmp_path / "token"),
    }
    script = str(REPO / "deploy" / "with-secrets.sh")
    out = subprocess.run(["sh", script, "env"], env=env, capture_output=True, text=True,
                         check=True)  # fmt: skip
    seen = dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)
    from urllib.parse import urlsplit

    broker = urlsplit(seen["ANEFARM_BROKER_URL"])
    assert (broker.scheme, broker.username, broker.hostname, broker.port) == (
        "rediss", "coordinator", "redis.internal", 6379,
    )  # fmt: skip
    from urllib.parse import unquote

    assert unquote(broker.password or "") == redis_pw
    database = urlsplit(seen["ANEFARM_DATABASE_URL"])
    assert unquote(database.password or "") == pg_pw
    assert database.query == "sslmode=verify-full"
    assert seen["ANEFARM_ARTIFACT_TOKEN"] == "tok-123"
