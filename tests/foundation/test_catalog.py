"""The device catalog: every row of ane-facts.md, selectors, clear errors."""

import json
import subprocess
import sys

import pytest

from orchestrator import catalog
from orchestrator.errors import UsageError

# (ProductType, chip, ANE cores, TOPS) straight from docs/ane-facts.md.
FACTS = [
    ("iPhone11,2", "A12", 8, 5.0),
    ("iPhone11,4", "A12", 8, 5.0),
    ("iPhone11,6", "A12", 8, 5.0),
    ("iPhone11,8", "A12", 8, 5.0),
    *[(f"iPad8,{i}", "A12X", 8, 5.0) for i in range(1, 9)],
    *[(f"iPad8,{i}", "A12Z", 8, 5.0) for i in range(9, 13)],
    *[(pt, "A13", 8, None) for pt in ("iPhone12,1", "iPhone12,3", "iPhone12,5", "iPhone12,8")],
    *[(f"iPhone13,{i}", "A14", 16, 11.0) for i in range(1, 5)],
    *[(f"iPhone14,{i}", "A15", 16, 15.8) for i in range(2, 9)],
    *[(f"iPhone15,{i}", "A16", 16, 17.0) for i in range(2, 6)],
    ("iPhone16,1", "A17 Pro", 16, 35.0),
    ("iPhone16,2", "A17 Pro", 16, 35.0),
    *[
        (f"iPhone17,{i}", c, 16, None)
        for i, c in [(1, "A18 Pro"), (2, "A18 Pro"), (3, "A18"), (4, "A18"), (5, "A18")]
    ],
    *[(f"iPad13,{i}", "M1", 16, 11.0) for i in range(4, 12)],
    *[(f"iPad16,{i}", "M4", 16, 38.0) for i in range(3, 7)],
]


@pytest.mark.parametrize(("product_type", "chip", "cores", "tops"), FACTS)
def test_every_documented_device_is_in_the_catalog(product_type, chip, cores, tops):
    device = catalog.device(product_type)
    assert (device.chip, device.ane_cores, device.ane_tops) == (chip, cores, tops)


def test_catalog_has_nothing_undocumented():
    assert set(catalog.DEVICES) == {row[0] for row in FACTS}


def test_a12_family_last_os():
    assert catalog.device("iPhone11,8").max_os == "18"
    assert catalog.device("iPhone11,8").newest_os().startswith("18.")
    assert catalog.device("iPad8,1").max_os == "26"


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("iPhone11,8", ["iPhone11,8"]),
        ("A12", ["iPhone11,2", "iPhone11,4", "iPhone11,6", "iPhone11,8"]),
        ("iPad8,*", [f"iPad8,{i}" for i in range(1, 13)]),
        ("iPhone11,8,iPhone16,1", ["iPhone11,8", "iPhone16,1"]),
        ("A17 Pro", ["iPhone16,1", "iPhone16,2"]),
    ],
)
def test_selectors(selector, expected):
    assert [d.product_type for d in catalog.select(selector)] == expected


def test_chip_comparison_selects_by_generation():
    chips = {d.chip for d in catalog.select("chip>=A14")}
    assert chips == {"A14", "M1", "A15", "A16", "A17 Pro", "A18", "A18 Pro", "M4"}
    assert {d.chip for d in catalog.select("chip<A13")} == {"A12", "A12X", "A12Z"}


def test_all_selects_everything():
    assert len(catalog.select("all")) == len(catalog.DEVICES)


@pytest.mark.parametrize("bad", ["iPhone11,9", "A21", "Pixel7", "chip>=Z9", "iPad99,*", ""])
def test_unknown_selector_is_a_usage_error_with_suggestions(bad):
    with pytest.raises(UsageError) as info:
        catalog.select(bad)
    assert info.value.hint


def test_close_matches_are_suggested():
    with pytest.raises(UsageError) as info:
        catalog.select("iPhone11,9")
    assert "iPhone11,8" in info.value.one_line()


def test_cli_catalog_json_lists_every_device():
    out = subprocess.run(
        [sys.executable, "-m", "orchestrator", "devices", "catalog", "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    rows = json.loads(out.stdout)
    assert {r["product_type"] for r in rows} == set(catalog.DEVICES)
    for row in rows:
        assert {"product_type", "name", "chip", "ane_cores", "ane_tops", "max_os"} <= set(row)


def test_cli_unknown_selector_exits_2_with_one_line():
    out = subprocess.run(
        [sys.executable, "-m", "orchestrator", "devices", "catalog", "--devices", "A21"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0
    assert "Traceback" not in out.stderr
