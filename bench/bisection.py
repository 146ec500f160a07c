"""Bisection figures on a SIMULATED iPhone XR on iOS 16 (no compute plan).

1. Wall time of `anefarm profile` on the sandwich sample without bisection, with it, and
   again on the same farm database (every signature reused from the compatibility matrix).
2. Coordinator cost of planning probes: cut + store + inspect + lint per op signature, on
   a program with many distinct signatures.

Run: .venv/bin/python bench/bisection.py   (prints figures; no targets in issue 8)
"""

from __future__ import annotations

import io
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from orchestrator import modelkit
from orchestrator.artifacts import ArtifactStore
from orchestrator.dispatch import SubmitOptions
from orchestrator.local import ProfileRequest, profile
from orchestrator.settings import load_settings

FARM = "iPhone11,8@16.7.8=1"


def _profile(home: Path, model: Path, bisect: str) -> tuple[float, dict[str, Any]]:
    settings = load_settings(home=home)
    request = ProfileRequest(
        models=[model], farm=FARM, options=SubmitOptions(iterations=30, warmup=3, bisect=bisect)
    )
    start = time.perf_counter()
    report = profile(settings, request, err=Console(file=io.StringIO()))
    return time.perf_counter() - start, report


def _row(label: str, seconds: float, report: dict[str, Any]) -> None:
    [row] = report["rows"]
    probes = report["probes"]
    lifted = sum(1 for p in probes if (p["repeat"] or 1) > 1)
    b = row["bisection"] or {}
    print(f"  {label:<34} {seconds:6.1f} s  verdict {row['verdict']:<8} probe runs {len(probes):2d}"
          f" (lifted {lifted})  reused signatures {b.get('reused', '–')}")  # fmt: skip


def end_to_end(samples: Path) -> None:
    model = samples / "conv_sandwich_dilated.mlpackage"
    print(f"profile {model.name} on {FARM} (SIMULATED), 30 iterations, wall time:")
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        _row("--no-bisect", *_profile(Path(a), model, "never"))
        _row("auto (bisected)", *_profile(Path(b), model, "auto"))
        _row("auto again, same database", *_profile(Path(b), model, "auto"))


def planning_cost(samples: Path) -> None:
    model = samples / "mobilenetv2_block.mlpackage"
    inventory = modelkit.inspect_model(model)
    signatures = {modelkit.op_signature(op) for op in inventory.ops}
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        start = time.perf_counter()
        index = modelkit.write_probes(model, root / "probes", signatures=signatures)
        store = ArtifactStore(root / "store", 10**9)
        for probe in index.probes:
            path = root / "probes" / probe.file
            store.add(path)
            modelkit.lint(modelkit.inspect_model(path), chips=["A12"])
        took = time.perf_counter() - start
    per = took / max(len(index.probes), 1) * 1000
    print(f"planning {len(index.probes)} probes of {model.name} (cut, store, inspect, lint):"
          f" {took * 1000:.0f} ms, {per:.1f} ms per signature")  # fmt: skip


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        samples = Path(scratch)
        modelkit.write_samples(samples, small=True)
        planning_cost(samples)
        end_to_end(samples)


if __name__ == "__main__":
    main()
