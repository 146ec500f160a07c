"""Single-op probe models: one per distinct op signature, plus an index back to the source.

A probe keeps the op's shapes, dtypes and parameters, inlines its constants (weights stay
in the probe) and turns its variable inputs into model inputs. The device bisection runs
probes to learn which op keeps a model off the ANE, and caches results by
``op_signature``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.errors import UsageError
from orchestrator.modelkit.inventory import OpInfo, TensorInfo

INDEX_FILE = "index.json"
MAX_REPEAT = 256  # copies of an op in one lifted probe


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


def _tensors(tensors: list[TensorInfo]) -> list[dict[str, Any]]:
    return [{"name": t.name, "shape": t.shape, "dtype": t.dtype} for t in tensors]


def _prepare(outdir: Path) -> None:
    if outdir.exists() and not outdir.is_dir():
        raise UsageError(f"{outdir}: exists and is not a directory", hint="pick a directory")
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(f"{outdir}: cannot create ({error.strerror})") from error


def write_probes(
    path: Path, outdir: Path, *, repeat: int = 1, signatures: set[str] | None = None
) -> ProbeIndex:
    """Write one probe per distinct op signature of the model at ``path`` into ``outdir``.

    ``repeat`` > 1 writes lifted probes: that many parallel copies of the op in one model,
    so an op too small to time shows its placement. ``signatures`` limits the probes
    written to those op signatures (the index still maps every op of theirs).

    Probes have the source's format (.mlpackage for ML programs, .mlmodel for neural
    networks and pipelines of them). ``index.json`` in ``outdir`` maps each probe to the
    source ops it stands for. Nothing goes through ``ct.convert``: specs are cut from the
    source protobuf, so bulk generation never pays coremltools' per-call ``gc.collect()``.
    """
    from orchestrator.modelkit import probe_network
    from orchestrator.modelkit.loading import inspect_loaded, load_spec
    from orchestrator.modelkit.probe_program import ProbeSkipped, ProgramSource

    if not 1 <= repeat <= MAX_REPEAT:
        raise UsageError(f"repeat {repeat} is out of range", hint=f"use 1–{MAX_REPEAT} copies")
    spec, spec_file, weights = load_spec(path)
    inventory = inspect_loaded(path, spec, spec_file, weights)
    _prepare(outdir)
    program = (
        ProgramSource(spec, path, spec_file.parent) if inventory.model_type == "mlProgram" else None
    )
    layers, settings = probe_network.network_layers(spec) if program is None else ([], None)
    suffix = ".mlpackage" if program is not None else ".mlmodel"
    by_signature: dict[str, Probe] = {}
    skipped: list[SkippedOp] = []
    for op in inventory.ops:
        signature = op_signature(op)
        if signatures is not None and signature not in signatures:
            continue
        known = by_signature.get(signature)
        if known is not None:  # a duplicate: the existing probe stands for this op too
            known.source_ops.append(op.index)
            known.source_names.append(op.name)
            continue
        lifted = f"_x{repeat}" if repeat > 1 else ""
        destination = outdir / f"{len(by_signature):04d}_{op.type}_{signature[:12]}{lifted}{suffix}"
        shutil.rmtree(destination, ignore_errors=True)
        destination.unlink(missing_ok=True)
        try:
            if program is not None:
                program.build_probe(op.index, destination, repeat)
            else:
                probe_network.build_probe(spec, layers[op.index], settings, op, destination, repeat)
        except ProbeSkipped as why:
            shutil.rmtree(destination, ignore_errors=True)
            skipped.append(SkippedOp(op.index, op.name, op.type, str(why)))
            continue
        by_signature[signature] = Probe(
            file=destination.name, signature=signature, op_type=op.type, kind=op.kind,
            source_ops=[op.index], source_names=[op.name],
            inputs=_tensors(op.inputs), outputs=_tensors(op.outputs),
        )  # fmt: skip
    index = ProbeIndex(
        source=str(path),
        source_sha256=inventory.sha256,
        format=suffix.removeprefix("."),
        probes=list(by_signature.values()),
        skipped=skipped,
    )
    (outdir / INDEX_FILE).write_text(json.dumps(index.to_json(), indent=2) + "\n", encoding="utf-8")
    return index


def write_prefix(path: Path, count: int, outdir: Path) -> Path:
    """Write the first ``count`` ops of the model at ``path`` as one model in ``outdir``
    (prefix search: profile growing prefixes to find where placement breaks)."""
    from orchestrator.modelkit import probe_network
    from orchestrator.modelkit.loading import inspect_loaded, load_spec
    from orchestrator.modelkit.probe_program import ProbeSkipped, ProgramSource

    spec, spec_file, weights = load_spec(path)
    inventory = inspect_loaded(path, spec, spec_file, weights)
    total = len(inventory.ops)
    if not 1 <= count <= total:
        raise UsageError(
            f"prefix {count} is out of range", hint=f"{path.name} has {total} ops: use 1–{total}"
        )
    _prepare(outdir)
    program = inventory.model_type == "mlProgram"
    suffix = ".mlpackage" if program else ".mlmodel"
    destination = outdir / f"{path.stem}_prefix{count:04d}{suffix}"
    shutil.rmtree(destination, ignore_errors=True)
    destination.unlink(missing_ok=True)
    try:
        if program:
            ProgramSource(spec, path, spec_file.parent).build_prefix(count, destination)
        else:
            layers, settings = probe_network.network_layers(spec)
            probe_network.build_prefix(spec, layers, settings, inventory.ops[:count], destination)
    except ProbeSkipped as why:
        shutil.rmtree(destination, ignore_errors=True)
        raise UsageError(f"cannot cut a prefix of {count} ops: {why}") from None
    return destination
