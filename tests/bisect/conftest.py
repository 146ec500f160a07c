"""Models for the bisection tests: the sample sandwich (plain convolutions around a dilated
one), a second model sharing its dilated convolution, and a tiny op too small to time."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bench.packed_probes import PackedFarm
from tests.bisect.packed_farms import XR_IOS16

SIDE = 64  # the sandwich sample's feature map with small=True


def _save_program(build: Callable[[], Any], path: Path) -> Path:
    import coremltools as ct

    model = ct.convert(build(), convert_to="mlprogram", minimum_deployment_target=ct.target.iOS16)
    model.save(str(path))
    return path


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory, samples: dict[str, Path]) -> dict[str, Path]:
    from coremltools.converters.mil import Builder as mb

    out = tmp_path_factory.mktemp("bisect-models")
    rng = np.random.default_rng(7)

    def shares_the_dilated_conv():
        # Same input shape, dtype and parameters as the sandwich's dilated convolution
        # (other weights: a signature leaves values out), then an op the sandwich lacks.
        @mb.program(input_specs=[mb.TensorSpec(shape=(1, 8, SIDE, SIDE))])
        def prog(x):
            w = rng.standard_normal((8, 8, 3, 3)).astype(np.float32)
            h = mb.conv(x=x, weight=w, pad_type="same", dilations=[2, 2], name="dilated")
            return mb.relu(x=h, name="relu")

        return prog

    def tiny():
        @mb.program(input_specs=[mb.TensorSpec(shape=(1, 2, 2, 2))])
        def prog(x):
            return mb.relu(x=x, name="relu_tiny")

        return prog

    return {
        "sandwich": samples["conv_sandwich_dilated.mlpackage"],
        "shares": _save_program(shares_the_dilated_conv, out / "shares_dilated.mlpackage"),
        "tiny": _save_program(tiny, out / "tiny_relu.mlpackage"),
    }


@pytest.fixture
def xr(tmp_path: Path, redis_url: str) -> Iterator[PackedFarm]:
    """A packing farm of one SIMULATED XR on iOS 16 (no compute plan), closed after."""
    farm = PackedFarm.start(tmp_path / "home", redis_url, packing=True, farm=XR_IOS16)
    yield farm
    farm.close()
