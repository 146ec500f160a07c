"""The Device contract: what every implementation (simulated, iOS) must do, as one suite.

To run it against another implementation, do what ``tests/ios/test_device_contract.py``
does: import the contract's tests into a module of your own and give it a ``device_case``
fixture returning a ``DeviceCase`` — factories that open a healthy device, a device whose
runner crashes, and a device that is not ready, each given a valid model file. The tests
themselves live in ``test_device_contract.py`` and only speak the ``Device`` interface.
``CASES`` lists the implementations built in this folder (the simulated one).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from agents.devices.base import Device

Factory = Callable[[], Device]


@dataclass(frozen=True)
class DeviceCase:
    name: str
    healthy: Factory
    crashing: Factory  # its runner dies on every run
    not_ready: Factory  # e.g. Developer Mode off
    model_path: Path  # a model the healthy device can run
    model_sha256: str


def simulated_case(model_path: Path, model_sha256: str) -> DeviceCase:
    from agents.devices.simulated import build_farm

    def one(spec: str) -> Factory:
        return lambda: build_farm(spec, seed=1)[0]

    return DeviceCase(
        name="simulated",
        healthy=one("iPhone11,8=1"),
        crashing=one("iPhone11,8=1!crash"),
        not_ready=one("iPhone11,8=1!devmode"),
        model_path=model_path,
        model_sha256=model_sha256,
    )


# name → builder(model_path, sha256): the implementations this folder can build itself.
CASES: dict[str, Callable[[Path, str], DeviceCase]] = {"simulated": simulated_case}


@pytest.fixture(scope="session")
def contract_model(samples: dict[str, Path]) -> tuple[Path, str]:
    """The small conv10x10 sample (tests/conftest.py) and its sha256."""
    from orchestrator import modelkit

    path = samples["conv10x10.mlpackage"]
    return path, modelkit.inspect_model(path).sha256


@pytest.fixture(params=sorted(CASES))
def device_case(request: pytest.FixtureRequest, contract_model: tuple[Path, str]) -> DeviceCase:
    return CASES[request.param](*contract_model)
