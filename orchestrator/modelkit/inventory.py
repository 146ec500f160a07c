"""What modelkit knows about a model: its ops with shapes and parameters, and lint findings.

``kind`` normalises the many native op names (MIL ``conv``, NN ``convolution``) into one
vocabulary that lint rules and the simulated devices reason about:
conv, conv_transpose, pool, activation, batchnorm, normalization, linear, matmul,
elementwise, concat, reshape, transpose, softmax, upsample, rnn, gather, reduce,
embedding, slice, pad, cast, custom, other.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: list[int] | None  # None: unknown (never guessed)
    dtype: str | None


@dataclass(frozen=True)
class OpInfo:
    index: int
    name: str
    type: str
    kind: str
    params: dict[str, Any]
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    flops: int | None
    weight_bytes: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> OpInfo:
        """The inverse of ``to_json`` (e.g. an op of an inventory stored at submit time)."""
        tensors = {key: [TensorInfo(**t) for t in data[key]] for key in ("inputs", "outputs")}
        return cls(**{**data, **tensors})


@dataclass(frozen=True)
class FeatureInfo:
    name: str
    type: str  # multiArray, image, …
    shape: list[int] | None
    dtype: str | None
    flexible: str  # none, enumerated, range
    # The other shapes a flexible input takes (flexible.shape_options): {"range": [lower,
    # upper]} or {"enumerated": [shape, …]}; ``shape`` is the default, what FLOPs are at.
    shapes: dict[str, list[list[int]]] | None = None


@dataclass(frozen=True)
class ModelInventory:
    path: Path
    sha256: str  # the artifact store's hash: the model's one sha256 (see loading)
    format: str  # mlmodel | mlpackage
    model_type: str  # neuralNetwork | mlProgram | pipeline
    spec_version: int
    min_deployment_target: str
    inputs: list[FeatureInfo]
    outputs: list[FeatureInfo]
    ops: list[OpInfo]
    const_count: int
    size_bytes: int
    compute_precision: str | None = None  # float16, float32, mixed
    notes: list[str] = field(default_factory=list)
    # Same spec and weights whatever the metadata and Manifest.json (loading.fingerprints);
    # None for inventories built without a model file (benchmarks, test doubles).
    content_sha256: str | None = None

    @property
    def total_flops(self) -> int:
        """The sum of the known FLOPs: read it with ``flops_known`` (JSON gives null)."""
        return sum(op.flops or 0 for op in self.ops)

    @property
    def flops_known(self) -> bool:
        """False when an op's cost is unknown: a sum of the rest would pass for the model's
        cost (CREPE once showed "0.0 MFLOPs" for several GFLOPs)."""
        return all(op.flops is not None for op in self.ops)

    @property
    def flops_note(self) -> str | None:
        """At which shape the FLOPs are (a flexible input's default), or why they are unknown."""
        from orchestrator.modelkit.flexible import describe

        notes = []
        flexible = [f"{f.name} {f.shape}" + (f", {describe(f.shapes)}" if f.shapes else "")
                    for f in self.inputs if f.flexible != "none"]  # fmt: skip
        if flexible:
            notes.append(f"FLOPs at the default input shape ({'; '.join(flexible)})")
        unknown = sum(op.flops is None for op in self.ops)
        if unknown:
            notes.append(f"cost unknown: {unknown} of {len(self.ops)} ops have unknown shapes")
        return "; ".join(notes) or None

    @property
    def total_weight_bytes(self) -> int:
        return sum(op.weight_bytes for op in self.ops)

    def to_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "sha256": self.sha256,
            "content_sha256": self.content_sha256,
            "format": self.format,
            "model_type": self.model_type,
            "spec_version": self.spec_version,
            "min_deployment_target": self.min_deployment_target,
            "size_bytes": self.size_bytes,
            "compute_precision": self.compute_precision,
            "inputs": [asdict(f) for f in self.inputs],
            "outputs": [asdict(f) for f in self.outputs],
            "compute_op_count": len(self.ops),
            "const_count": self.const_count,
            "total_flops": self.total_flops if self.flops_known else None,
            "flops_note": self.flops_note,
            "total_weight_bytes": self.total_weight_bytes,
            "ops": [op.to_json() for op in self.ops],
            "notes": self.notes,
        }


@dataclass(frozen=True)
class LintFinding:
    """A *prediction* that an op (or the whole model) will not run on the ANE of a chip."""

    rule_id: str
    chip: str
    op_index: int | None  # None: a model-level finding
    op_name: str
    op_type: str
    expected_unit: str  # gpu | cpu | unknown
    reason: str
    source: str
    fix: str
    severity: str = "warning"

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "prediction": True}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LintFinding:
        """The inverse of ``to_json`` (its extra ``prediction`` key is dropped)."""
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})
