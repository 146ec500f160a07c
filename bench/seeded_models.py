"""The seeded models context search is measured on (bench/context_search.py, the bisection
tests), and their ground truth on a SIMULATED chip.

``random_model(seed)``: a chain of 8–28 ops drawn from convolutions (plain and dilated),
activations, element-wise ops with constants, pooling (3×3 and 15×15), transposes and
softmax, at feature maps of 16–64 px and 8–32 channels, so that some segments beside a
cause are cheap (Core ML moves them) and some are not (they stay on the ANE).
``hidden_cause_model``: 100 small ops with a 15×15 pooling too small for its probe to time.
``truth``: ``agents.devices.simulation`` profiles the model as the device does
(``placement.context_roles``: per op on the ANE, cause, or carried by which op).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from agents.devices.simulation.chips import chip_model
from agents.devices.simulation.placement import context_roles
from agents.devices.simulation.profile import profile
from orchestrator import catalog, modelkit
from orchestrator.protocol import ComputeUnits

KINDS = ("conv", "conv", "dilated", "act", "eltwise", "pool", "bigpool", "transpose", "softmax")


def random_model(path: Path, seed: int, *, small: bool = False) -> Path:
    """A seeded random chain of ops (module docstring); same seed, same model. ``small``:
    8 channels on 8–16 px, where a cause is often too small for its own probe to time
    (the models of the no-cause case: nothing placed off the ANE alone)."""
    import coremltools as ct
    from coremltools.converters.mil import Builder as mb

    rng = np.random.default_rng(seed)
    side = int(rng.choice([16, 32, 64, 128]))
    channels = int(rng.choice([8, 16, 32, 64]))
    if small:
        side, channels = int(rng.choice([8, 16])), 8
    n_ops = int(rng.integers(8, 29))
    kinds = [str(k) for k in rng.choice(KINDS, size=n_ops, p=_weights())]

    @mb.program(input_specs=[mb.TensorSpec(shape=(1, channels, side, side))])  # type: ignore[untyped-decorator]
    def prog(x: Any) -> Any:
        h = x
        for i, kind in enumerate(kinds):
            name = f"{kind}_{i}"
            if kind in ("conv", "dilated"):
                w = rng.standard_normal((channels, channels, 3, 3)).astype(np.float32) * 0.1
                d = [2, 2] if kind == "dilated" else [1, 1]
                h = mb.conv(x=h, weight=w, pad_type="same", dilations=d, name=name)
            elif kind == "act":
                h = [mb.relu, mb.sigmoid, mb.tanh][int(rng.integers(3))](x=h, name=name)
            elif kind == "eltwise":
                c = rng.standard_normal((1, channels, 1, 1)).astype(np.float32)
                h = [mb.add, mb.mul][int(rng.integers(2))](x=h, y=c, name=name)
            elif kind in ("pool", "bigpool"):
                k = [15, 15] if kind == "bigpool" else [3, 3]
                h = mb.max_pool(x=h, kernel_sizes=k, strides=[1, 1], pad_type="same", name=name)
            elif kind == "transpose":
                h = mb.transpose(x=h, perm=[0, 1, 3, 2], name=name)
            else:
                h = mb.softmax(x=h, axis=1, name=name)
        return h

    model = ct.convert(prog, convert_to="mlprogram", minimum_deployment_target=ct.target.iOS16)
    model.save(str(path))
    return path


def hidden_cause_model(path: Path, n_ops: int, *at: int, seed: int = 0, size: int = 8) -> Path:
    """A chain of ``n_ops`` small ops (8 channels on 8 px: convolutions, ReLUs, adds and
    multiplies by constants) with a 15×15 max pooling at each position of ``at``: an op the
    ANE cannot run, too small for its own probe to time — the cause prefix search must find
    (the first one)."""
    import coremltools as ct
    from coremltools.converters.mil import Builder as mb

    rng = np.random.default_rng(seed)
    side = channels = size

    @mb.program(input_specs=[mb.TensorSpec(shape=(1, channels, side, side))])  # type: ignore[untyped-decorator]
    def prog(x: Any) -> Any:
        h = x
        for i in range(n_ops):
            if i in at:
                h = mb.max_pool(x=h, kernel_sizes=[15, 15], strides=[1, 1], pad_type="same",
                                name=f"bigpool_{i}")  # fmt: skip
            elif i % 4 == 0:
                w = rng.standard_normal((channels, channels, 3, 3)).astype(np.float32) * 0.1
                h = mb.conv(x=h, weight=w, pad_type="same", name=f"conv_{i}")
            elif i % 4 == 1:
                h = mb.relu(x=h, name=f"act_{i}")
            else:
                c = rng.standard_normal((1, channels, 1, 1)).astype(np.float32)
                h = [mb.add, mb.mul][i % 2](x=h, y=c, name=f"eltwise_{i}")
        return h

    model = ct.convert(prog, convert_to="mlprogram", minimum_deployment_target=ct.target.iOS16)
    model.save(str(path))
    return path


def _weights() -> list[float]:
    # Causes (dilated on A12, 15×15 pooling, transposes on A12) about one op in five.
    raw = {"conv": 0.2, "dilated": 0.07, "act": 0.2, "eltwise": 0.2, "pool": 0.08,
           "bigpool": 0.05, "transpose": 0.05, "softmax": 0.05}  # fmt: skip
    weights = [raw[k] / KINDS.count(k) for k in KINDS]
    return [w / sum(weights) for w in weights]


def truth(model: Path, device_class: str) -> list[tuple[str | None, str | None]]:
    """Per op of ``model``: (role, carrying op's name) under `all` on the SIMULATED chip."""
    ops = modelkit.inspect_model(model).ops
    chip = chip_model(catalog.DEVICES[device_class].chip)
    prof = profile(ops, chip)
    roles = context_roles(prof.support, prof.placements[ComputeUnits.ALL].units)
    return [(role, ops[by].name if by is not None else None) for role, by in roles]
