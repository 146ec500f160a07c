"""Core ML models on any OS through coremltools: inspect, fingerprint, lint, samples.

Public API: ``inspect_model``, ``lint``, ``write_probes``, ``write_prefix``, ``op_signature``,
``write_samples`` and the data classes of ``inventory`` and ``probes``.
Importing this package is cheap: coremltools (~2.5 s, noisy on Linux) is imported only
inside the functions that need it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.modelkit.inventory import (
    FeatureInfo,
    LintFinding,
    ModelInventory,
    OpInfo,
    TensorInfo,
)
from orchestrator.modelkit.probes import Probe, ProbeIndex, SkippedOp, op_signature

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "FeatureInfo",
    "LintFinding",
    "ModelInventory",
    "OpInfo",
    "Probe",
    "ProbeIndex",
    "SkippedOp",
    "TensorInfo",
    "inspect_model",
    "lint",
    "op_signature",
    "write_prefix",
    "write_probes",
    "write_samples",
]


def inspect_model(path: Path) -> ModelInventory:
    from orchestrator.modelkit.loading import inspect_model as _inspect

    return _inspect(Path(path))


def lint(
    inventory: ModelInventory, chips: Sequence[str] | None = None, *, os_version: str | None = None
) -> list[LintFinding]:
    from orchestrator.modelkit.rules import lint as _lint

    return _lint(inventory, chips, os_version=os_version)


def write_samples(outdir: Path, *, small: bool = False) -> list[Path]:
    from orchestrator.modelkit.samples import write_samples as _write

    return _write(Path(outdir), small=small)


def write_probes(
    path: Path, outdir: Path, *, repeat: int = 1, signatures: set[str] | None = None
) -> ProbeIndex:
    from orchestrator.modelkit.probes import write_probes as _write

    return _write(Path(path), Path(outdir), repeat=repeat, signatures=signatures)


def write_prefix(path: Path, count: int, outdir: Path) -> Path:
    from orchestrator.modelkit.probes import write_prefix as _write

    return _write(Path(path), count, Path(outdir))
