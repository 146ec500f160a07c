"""Farm YAML files: the whole one-line message for every kind of bad file, and what a good
file may spell loosely (a YAML float OS, a quoted count, a null OS)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.devices.simulation.farm import parse_farm
from orchestrator.errors import UsageError

NEEDS_DEVICES = (
    "farm file {path} needs a non-empty 'devices' list"
    ' (devices: [{{product_type: "iPhone11,8", count: 2}}])'
)
NEEDS_PT = '{path} device entry 1: needs product_type, e.g. product_type: "iPhone11,8"'
FAULTS = "{path} device entry 1: faults must be a list of strings like 'crash@1'"
SEED = "{path}: device entry 1 seed must be a whole number ≥ 0, not {value}"
PT = 'devices: [{{product_type: "iPhone11,8", {more}}}]'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("seed: 1\n", NEEDS_DEVICES),
        ('seed: "7"\n', NEEDS_DEVICES),
        ("seed: -1\ndevices: []", NEEDS_DEVICES),
        ("", NEEDS_DEVICES),
        ("- a\n- b\n", NEEDS_DEVICES),
        ("devices: []", NEEDS_DEVICES),
        ("devices: {product_type: iPhone11,8}", NEEDS_DEVICES),
        ("devices: [{count: 2}]", NEEDS_PT),
        ("devices: [iPhone11]", NEEDS_PT),
        ("devices: [{product_type: 118}]", NEEDS_PT),
        (
            PT.format(more="colour: red, size: 2"),
            "{path} device entry 1: unknown keys ['colour', 'size']"
            " (allowed: product_type, os, count, seed, faults)",
        ),
        (
            "name: lab\nseeds: 3\n" + PT.format(more="count: 1"),
            "farm file {path}: unknown keys ['name', 'seeds'] (allowed: seed, devices)",
        ),
        (PT.format(more="faults: crash"), FAULTS),
        (PT.format(more="faults: [1]"), FAULTS),
        (PT.format(more="seed: -1"), SEED.format(path="{path}", value="-1")),
        (PT.format(more="seed: true"), SEED.format(path="{path}", value="True")),
        (PT.format(more="seed: 1.5"), SEED.format(path="{path}", value="1.5")),
        (
            'seed: "7"\n' + PT.format(more="count: 1"),
            "{path}: seed must be a whole number ≥ 0, not '7'",
        ),
        (
            PT.format(more="count: 0"),
            "iPhone11,8: device count '0' is not a number from 1 to 64 (e.g. iPhone11,8=2)",
        ),
        (
            PT.format(more="count: [2]"),
            "iPhone11,8: device count '[2]' is not a number from 1 to 64 (e.g. iPhone11,8=2)",
        ),
        (
            PT.format(more="os: 19"),
            "iPhone11,8 (iPhone XR) runs OS 12.0 to 18.x, not 19 (omit @OS for the newest (18.7))",
        ),
        (
            PT.format(more="os: [16]"),
            "iPhone11,8: OS version '[16]' is not like 17.4 or 16.7.8"
            " (omit @OS for the newest (18.7))",
        ),
        (
            'devices: [{product_type: "iPhone11,8", os: "12.0"}, {product_type: "iPad9,9"}]',
            "unknown device 'iPad9,9' (did you mean iPad8,9, iPad13,9, iPad8,8?)",
        ),
    ],
)
def test_bad_farm_files_say_exactly_what_is_wrong(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "farm.yaml"
    path.write_text(text)
    with pytest.raises(UsageError) as caught:
        parse_farm(path)
    assert caught.value.one_line() == message.format(path=path)


def test_loosely_spelled_values_a_good_file_may_hold(tmp_path: Path) -> None:
    path = tmp_path / "farm.yaml"
    path.write_text(
        "devices:\n"
        '  - {product_type: "iPhone11,8", os: 16.7, count: "2"}\n'
        '  - {product_type: "iPhone11,8", os: null, seed: 0}\n'
    )
    specs = parse_farm(path)
    assert [(s.product_type, s.os_version, s.index, s.seed) for s in specs] == [
        ("iPhone11,8", "16.7", 0, None),
        ("iPhone11,8", "16.7", 1, None),
        ("iPhone11,8", "18.7", 2, 0),
    ]
