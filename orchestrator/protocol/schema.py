"""The JSON Schemas of the exported messages, written for the Swift runner and other peers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from orchestrator.protocol import (
    SCHEMA_VERSION,
    Message,
    RunBatch,
    RunBatchResult,
    RunnerManifest,
    RunnerResult,
    Verdict,
)

# Messages whose JSON Schemas are exported for the Swift runner and other peers.
EXPORTED: dict[str, type[Message]] = {
    "run-batch": RunBatch,
    "runner-manifest": RunnerManifest,
    "runner-result": RunnerResult,
    "run-batch-result": RunBatchResult,
    "verdict": Verdict,
}


def json_schema(message: type[Message]) -> dict[str, Any]:
    schema = message.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://anefarm.invalid/schema/v{SCHEMA_VERSION}/{message.__name__}.json"
    return schema


def render_schema(message: type[Message]) -> str:
    """Deterministic text of a schema, so committed copies can be compared byte for byte."""
    return json.dumps(json_schema(message), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def export_schemas(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, message in EXPORTED.items():
        path = directory / f"{name}.schema.json"
        path.write_text(render_schema(message), encoding="utf-8")
        written.append(path)
    return written
