"""Python and Swift are held to one contract: committed schemas, fixtures and statistics
vectors are exactly what orchestrator.protocol produces, and they validate as labelled."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from pydantic import BaseModel, ValidationError

from orchestrator import protocol
from orchestrator.protocol import schema
from orchestrator.stats import summarize
from tests.contract.generate_fixtures import ROOT, expected_files

SCHEMA_DIR = ROOT.parent / "Schema"
TYPES: dict[str, type[BaseModel]] = {
    "runner-manifest": protocol.RunnerManifest,
    "runner-result": protocol.RunnerResult,
    "run-batch-result": protocol.RunBatchResult,
    "run-batch": protocol.RunBatch,
}


def message_type(path: Path) -> str:
    # Longest prefix first: "run-batch-result-…" is not a "run-batch".
    return next(
        name for name in sorted(TYPES, key=len, reverse=True) if path.stem.startswith(name + "-")
    )


def test_schema_export_reproduces_committed_schemas_byte_for_byte(tmp_path: Path) -> None:
    schema.export_schemas(tmp_path)
    committed = sorted(p.name for p in SCHEMA_DIR.glob("*.json"))
    assert committed == sorted(p.name for p in tmp_path.glob("*.json"))
    for name in committed:
        assert (tmp_path / name).read_bytes() == (SCHEMA_DIR / name).read_bytes(), (
            f"{name} drifted: run `make schema`"
        )


def test_committed_fixtures_are_what_the_generator_writes() -> None:
    for path, text in expected_files().items():
        assert path.read_text(encoding="utf-8") == text, (
            f"{path.name} drifted: run `python -m tests.contract.generate_fixtures`"
        )


VALID = sorted((ROOT / "valid").glob("*.json"))
INVALID = sorted((ROOT / "invalid").glob("*.json"))


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.stem)
def test_valid_fixtures_validate(path: Path) -> None:
    data = json.loads(path.read_text())
    TYPES[message_type(path)].model_validate(data)
    schema = json.loads((SCHEMA_DIR / f"{message_type(path)}.schema.json").read_text())
    jsonschema.validate(data, schema)


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_invalid_fixtures_are_rejected(path: Path) -> None:
    with pytest.raises(ValidationError):
        TYPES[message_type(path)].model_validate_json(path.read_text())


def test_invalid_fixture_set_covers_the_rules() -> None:
    names = {p.stem for p in INVALID}
    for rule in ("negative-latency", "unknown-field", "bad-version", "stats-out-of-order",
                 "no-samples-no-error", "unknown-compute-units", "bad-sha256", "duplicate-setting"):  # fmt: skip
        assert f"runner-result-{rule}" in names


def test_stats_vectors_match_python() -> None:
    vectors = json.loads((ROOT / "stats-vectors.json").read_text())
    assert len(vectors) >= 5
    for vector in vectors:
        got = summarize(vector["samples"])
        for key, value in vector["expected"].items():
            assert got[key] == pytest.approx(value, rel=1e-12), key
