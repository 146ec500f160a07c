"""deploy/compose.yaml, checked without a container runtime (none on these machines):
against the Compose Specification's JSON Schema (shipped by check-jsonschema, with its
licence), and for what issue 20 asks of it."""

from __future__ import annotations

import copy
import json
import re
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    vendor = files("check_jsonschema.builtin_schemas.vendor")
    assert (vendor / "licenses" / "LICENSE.compose-spec").is_file()
    return dict(json.loads((vendor / "compose-spec.json").read_text()))


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return dict(yaml.safe_load((DEPLOY / "compose.yaml").read_text()))


def _errors(schema: dict[str, Any], document: dict[str, Any]) -> list[str]:
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(document)]


def _services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return dict(compose["services"])


def test_the_compose_file_is_valid_against_the_compose_specification(schema, compose):
    assert _errors(schema, compose) == []


def test_the_schema_check_catches_a_misspelt_key(schema, compose):
    broken = copy.deepcopy(compose)
    broken["services"]["redis"]["healthcheck"]["intervall"] = "10s"
    assert _errors(schema, broken), "the schema accepted a key Compose does not know"


def test_every_service_has_a_healthcheck(compose):
    for name, service in _services(compose).items():
        check = service.get("healthcheck")
        assert check and check.get("test") and not check.get("disable"), name


def test_the_pieces_and_their_order(compose):
    services = _services(compose)
    assert set(services) == {"redis", "postgres", "db-upgrade", "coordinator"}
    assert services["db-upgrade"]["command"] == ["anefarm", "db", "upgrade"]
    assert services["coordinator"]["command"] == [
        "anefarm", "coordinator", "--serve", "0.0.0.0:8480",
    ]  # fmt: skip
    needs = services["coordinator"]["depends_on"]
    assert needs["db-upgrade"]["condition"] == "service_completed_successfully"
    assert needs["redis"]["condition"] == needs["postgres"]["condition"] == "service_healthy"
    assert services["db-upgrade"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_redis_is_persistent_authenticated_and_not_published(compose):
    redis = _services(compose)["redis"]
    assert "ports" not in redis, "Redis must stay on the compose network unless asked"
    conf = (DEPLOY / "redis" / "anefarm.conf").read_text()
    assert re.search(r"^appendonly yes$", conf, re.M)
    assert re.search(r"^appendfsync everysec$", conf, re.M)
    assert re.search(r"^aclfile /run/anefarm-redis/users.acl$", conf, re.M)
    acl = (DEPLOY / "redis" / "users.acl.in").read_text()
    assert re.search(r"^user default off\b", acl, re.M), "the default user must be off"
    assert set(redis["secrets"]) == {"redis_coordinator_password", "redis_agent_password"}
    assert "/run/secrets/redis_agent_password" in redis["entrypoint"]


def test_passwords_come_from_secret_files_only(compose):
    text = (DEPLOY / "compose.yaml").read_text()
    assert not re.search(r"PASSWORD:\s*\S+", text.replace("PASSWORD_FILE", "")), text
    assert not re.search(r"://[^/\s:]*:[^@\s/]+@", text), "a URL with a password in compose"
    for name, secret in compose["secrets"].items():
        assert secret["file"].startswith("./secrets/"), name
    postgres = _services(compose)["postgres"]
    assert postgres["environment"]["POSTGRES_PASSWORD_FILE"] == "/run/secrets/postgres_password"
    assert any("postgresql/data" in volume for volume in postgres["volumes"])


def test_images_are_pinned_by_digest(compose):
    for name, service in _services(compose).items():
        if "image" in service and "build" not in service:
            assert DIGEST.search(service["image"]), f"{name}: {service['image']}"


def test_the_anefarm_services_run_locked_down(compose):
    for name in ("db-upgrade", "coordinator"):
        service = _services(compose)[name]
        assert service["read_only"] is True, name
        assert service["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in service["security_opt"], name
