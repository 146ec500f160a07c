"""Farm specs and fault scripts: strings, YAML files, and clear errors for bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.devices.simulated import build_farm
from agents.devices.simulation.farm import parse_farm
from agents.devices.simulation.faults import Fault, parse_fault
from orchestrator.errors import UsageError
from orchestrator.protocol import DeviceInfo


def test_string_spec_counts_os_and_stable_udids() -> None:
    farm = build_farm("iPhone11,8=2,iPhone11,2@16.7.8=1,iPad8,1=1,iPhone11,8=1")
    udids = [d.identity.udid for d in farm]
    assert udids == ["SIM-iPhone11-8-0", "SIM-iPhone11-8-1", "SIM-iPhone11-2-0",
                     "SIM-iPad8-1-0", "SIM-iPhone11-8-2"]  # fmt: skip
    assert [d.identity.os_version for d in farm] == ["18.7", "18.7", "16.7.8", "26.1", "18.7"]
    for device in farm:
        ident = device.identity
        DeviceInfo.model_validate(ident.to_info().model_dump())  # UDID and build are valid
        assert ident.simulated and "SIMULATED" in ident.name and ident.os_build.endswith("sim")
    assert farm[2].identity.os_build.startswith("20H")  # iOS 16.7 → train 20, letter H
    again = build_farm("iPhone11,8=2,iPhone11,2@16.7.8=1,iPad8,1=1,iPhone11,8=1")
    assert [d.identity for d in again] == [d.identity for d in farm]


def test_faults_in_the_compact_string() -> None:
    specs = parse_farm("iPhone11,8=1!crash@1!hang~0.25,iPhone13,2=2!compilefail#1537cb92@3")
    assert specs[0].faults == [Fault("crash", at_run=1), Fault("hang", probability=0.25)]
    assert specs[1].faults == specs[2].faults == [Fault("compilefail", 3, None, "1537cb92")]
    assert parse_fault("loadfail#abcdef~0.5").text() == "loadfail#abcdef~0.5"


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("iPhone99,9=1", "unknown device 'iPhone99,9'"),
        ("iPhone11,8@19.0=1", "runs OS 12.0 to 18.x, not 19.0"),
        ("iPhone16,1@16.0=1", "runs OS 17.0 to 26.x, not 16.0"),
        ("iPhone11,8@seventeen=1", "is not like 17.4"),
        ("iPhone11,8=0", "device count '0'"),
        ("iPhone11,8=two", "device count 'two'"),
        ("iPhone11,8=65", "device count '65'"),
        ("iPhone11,8", "cannot read the farm spec"),
        ("iPhone11,8=1;iPad8,1=1", "device count '1;iPad8'"),
        ("iPhone11,8=1!explode", "unknown simulated fault 'explode'"),
        ("iPhone11,8=1!crash@0", "runs are counted from 1"),
        ("iPhone11,8=1!hang~1.5", "outside 0..1"),
        ("iPhone11,8=1!battery@2", "permanent device state"),
        ("iPhone11,8=1!crash@x", "cannot read the simulated fault 'crash@x'"),
        ("", "empty farm spec"),
    ],
)
def test_bad_specs_are_clear_usage_errors(spec: str, says: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_farm(spec)
    assert says in caught.value.one_line()
    assert "\n" not in caught.value.one_line()


def test_bad_time_mode_and_speed() -> None:
    with pytest.raises(UsageError, match="time mode"):
        build_farm("iPhone11,8=1", time_mode="fast")
    with pytest.raises(UsageError, match="speed"):
        build_farm("iPhone11,8=1", time_mode="realtime", speed=0)


def test_yaml_farm_with_os_seeds_and_faults(tmp_path: Path) -> None:
    path = tmp_path / "farm.yaml"
    path.write_text(
        "seed: 7\n"
        "devices:\n"
        '  - {product_type: "iPhone11,8", os: "16.7.8", count: 2, faults: ["crash@1"]}\n'
        '  - {product_type: "iPhone13,2", seed: 3, faults: ["battery"]}\n'
    )
    farm = build_farm(path, seed=0)
    assert [d.identity.udid for d in farm] == ["SIM-iPhone11-8-0", "SIM-iPhone11-8-1",
                                               "SIM-iPhone13-2-0"]  # fmt: skip
    assert [d.seed for d in farm] == [7, 7, 3]
    assert farm[0].spec.faults == [Fault("crash", at_run=1)]
    assert not farm[2].readiness().ready
    assert [d.identity for d in build_farm(str(path))] == [d.identity for d in farm]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("devices: [", "is not valid YAML"),
        ("seed: 1\n", "needs a non-empty 'devices' list"),
        ("devices: [{count: 2}]", "device entry 1: needs product_type"),
        ('devices: [{product_type: "iPhone11,8", colour: red}]', "unknown keys ['colour']"),
        ('devices: [{product_type: "iPhone11,8", faults: crash}]', "faults must be a list"),
        ('devices: [{product_type: "iPhone11,8", seed: -1}]', "whole number"),
        ('devices: [{product_type: "iPhone11,8", os: "12.0"}, {product_type: "iPad9,9"}]',
         "unknown device 'iPad9,9'"),
    ],
)  # fmt: skip
def test_bad_yaml_farms_are_clear_usage_errors(tmp_path: Path, text: str, says: str) -> None:
    path = tmp_path / "farm.yml"
    path.write_text(text)
    with pytest.raises(UsageError) as caught:
        parse_farm(path)
    assert says in caught.value.one_line()


def test_missing_yaml_file() -> None:
    with pytest.raises(UsageError, match="not found"):
        parse_farm("/nonexistent/farm.yaml")
