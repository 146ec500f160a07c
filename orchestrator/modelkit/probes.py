"""Single-op probe models: one per distinct op signature, plus an index back to the source.

A probe keeps the op's shapes, dtypes and parameters, inlines its constants (weights stay
in the probe) and turns its variable inputs into model inputs. The device bisection runs
probes to learn which op keeps a model off the ANE, and caches results by
``op_signature``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.modelkit.inventory import OpInfo

INDEX_FILE = "index.json"


def _signature_body(op: OpInfo) -> dict[str, Any]:
    # Names are left out on purpose: two ops that differ only by name are the same probe.
    return {
        "type": op.type,
        "params": op.params,
        "inputs": [[t.shape, t.dtype] for t in op.inputs],
        "outputs": [[t.shape, t.dtype] for t in op.outputs],
    }


def op_signature(op: OpInfo) -> str:
    """sha256 of the canonical JSON (sorted keys, no spaces) of type, params, shapes, dtypes."""
    text = json.dumps(_signature_body(op), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Probe:
    """One probe model and the source ops it stands for."""

    file: str  # relative to the probe directory
    signature: str
    op_type: str
    kind: str
    source_ops: list[int]  # indices into ModelInventory.ops
    source_names: list[str]
    inputs: list[dict[str, Any]]  # [{"name", "shape", "dtype"}]
    outputs: list[dict[str, Any]]


@dataclass(frozen=True)
class SkippedOp:
    """An op no probe could be built for, and why (e.g. unknown shapes)."""

    op_index: int
    op_name: str
    op_type: str
    reason: str


@dataclass(frozen=True)
class ProbeIndex:
    source: str
    source_sha256: str
    format: str  # mlpackage | mlmodel: the probes' format, the same as the source's
    probes: list[Probe]
    skipped: list[SkippedOp] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "source_sha256": self.source_sha256,
            "format": self.format,
            "probe_count": len(self.probes),
            "probes": [asdict(p) for p in self.probes],
            "skipped": [asdict(s) for s in self.skipped],
        }


def write_probes(path: Path, outdir: Path) -> ProbeIndex:
    """Write one probe per distinct op signature of the model at ``path`` into ``outdir``."""
    raise NotImplementedError("probe generation lands in the next commit")
