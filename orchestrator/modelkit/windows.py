"""Window cuts: ops ``start`` … ``stop - 1`` of a model as one model (context search).

A prefix (``write_prefix``) is the window that starts at 0. Context search
(``orchestrator/bisect/context.py``) cuts a run of ops the probes put on the ANE together
with the ops off the ANE that border it: inside such a window each of those ops has the
same neighbours, on the same units, as in the whole model, so Core ML's segment choice for
them is the one it makes in the whole model.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from orchestrator.errors import UsageError


def window_file(path: Path, start: int, stop: int, suffix: str) -> str:
    return f"{path.stem}_window{start:04d}-{stop - 1:04d}{suffix}"


def write_window(path: Path, start: int, stop: int, outdir: Path) -> Path:
    """Write ops ``start`` … ``stop - 1`` (positions in ``inspect_model(path).ops``) of the
    model at ``path`` as one model in ``outdir``: values the window reads from outside are
    its inputs, values nothing in it reads are its outputs (the last op's always)."""
    from orchestrator.modelkit import probe_network
    from orchestrator.modelkit.loading import inspect_loaded, load_spec
    from orchestrator.modelkit.probe_program import ProbeSkipped, ProgramSource

    spec, spec_file, weights = load_spec(path)
    inventory = inspect_loaded(path, spec, spec_file, weights)
    total = len(inventory.ops)
    if not 0 <= start < stop <= total:
        raise UsageError(
            f"window {start}–{stop - 1} is out of range",
            hint=f"{path.name} has {total} ops: use 0 ≤ start ≤ end < {total}",
        )
    if outdir.exists() and not outdir.is_dir():
        raise UsageError(f"{outdir}: exists and is not a directory", hint="pick a directory")
    outdir.mkdir(parents=True, exist_ok=True)
    program = inventory.model_type == "mlProgram"
    destination = outdir / window_file(path, start, stop, ".mlpackage" if program else ".mlmodel")
    shutil.rmtree(destination, ignore_errors=True)
    destination.unlink(missing_ok=True)
    try:
        if program:
            ProgramSource(spec, path, spec_file.parent).build_window(start, stop, destination)
        else:
            layers, settings = probe_network.network_layers(spec)
            probe_network.build_prefix(
                spec, layers[start:stop], settings, inventory.ops[start:stop], destination
            )
    except ProbeSkipped as why:
        shutil.rmtree(destination, ignore_errors=True)
        raise UsageError(f"cannot cut ops {start}–{stop - 1} as a model: {why}") from None
    return destination
