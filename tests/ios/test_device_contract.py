"""The shared Device contract suite (tests/agents) run against IOSDevice on the fakes:
the unmodified pymobiledevice3 client over a fake usbmuxd/lockdownd, developer services
faked at the Python boundary."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from agents.devices.ios import IOSDevice, RunnerConfig
from tests.agents.device_contract import DeviceCase, contract_model
from tests.agents.test_device_contract import (
    test_a_run_longer_than_the_timeout_raises_runner_timeout,
    test_close_is_idempotent,
    test_diagnostics_after_a_runner_crash,
    test_identity_is_valid_and_matches_the_catalog,
    test_not_ready_device_says_why_and_refuses_to_run,
    test_readiness_of_a_healthy_device,
    test_run_returns_a_valid_result_for_the_manifest,
)
from tests.ios.conftest import RUNNER, runner_app
from tests.ios.fake_developer import FakeDeveloperServices
from tests.ios.fake_usbmuxd import FakeIPhone, FakeUsbmuxd

__all__ = [
    "contract_model",
    "test_a_run_longer_than_the_timeout_raises_runner_timeout",
    "test_close_is_idempotent",
    "test_diagnostics_after_a_runner_crash",
    "test_identity_is_valid_and_matches_the_catalog",
    "test_not_ready_device_says_why_and_refuses_to_run",
    "test_readiness_of_a_healthy_device",
    "test_run_returns_a_valid_result_for_the_manifest",
]


@pytest.fixture
def device_case(
    fake_mux: FakeUsbmuxd, contract_model: tuple[Path, str], tmp_path: Path
) -> Iterator[DeviceCase]:
    serials = itertools.count(1)

    def factory(**state: object) -> IOSDevice:
        udid = f"00008020-{next(serials):016X}"
        fake = fake_mux.attach(FakeIPhone(udid, apps=runner_app(), **state))  # type: ignore[arg-type]
        return IOSDevice(
            udid,
            runner=RunnerConfig(bundle_id=RUNNER, expected_version="7"),
            services=FakeDeveloperServices(fake_mux, fake),
            usbmux_address=fake_mux.address,
            pair_records_dir=tmp_path / "pair-records",
            simulated=True,  # a fake device is never a real measurement
        )

    yield DeviceCase(
        name="ios-on-fakes",
        healthy=factory,
        crashing=lambda: factory(behaviour="crash"),
        not_ready=lambda: factory(developer_mode=False),
        model_path=contract_model[0],
        model_sha256=contract_model[1],
    )
