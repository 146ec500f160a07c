"""OS-version reading at every call site: dotted releases, and what each does with odd text.

Pinned against the hand-rolled readers before they moved to ``orchestrator.catalog.osversion``, so
the move changed no behaviour: a beta "17.4b2", a bare major "18", an empty string.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from agents.devices.ios.ddi import ImageKey, image_for, prepare_command
from agents.devices.ios.versions import os_tuple
from agents.devices.simulated import os_build
from agents.devices.simulation.farm import check_os
from agents.devices.simulation.plan import plan_available
from orchestrator.catalog.osversion import leading, major_minor, parse, release, short
from orchestrator.errors import ConfigError, UsageError
from orchestrator.modelkit.rules import parse_os
from orchestrator.modelkit.targets import os_too_old, version_tuple
from orchestrator.render.matrix import _os_line
from orchestrator.report_rows import ReportRow

ODD = ["17.4b2", ""]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("17.4", (17, 4)), ("18", (18, 0)), ("16.7.8", (16, 7)), ("26.1", (26, 1))],
)
def test_verdict_reads_major_minor(text: str, expected: tuple[int, int]) -> None:
    assert major_minor(text) == expected  # the verdict's "plan exists from 17.4" check


@pytest.mark.parametrize("text", ODD)
def test_verdict_refuses_odd_versions(text: str) -> None:
    with pytest.raises(ValueError):  # the protocol admits only dotted numbers
        major_minor(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("17.4", True), ("17.4.1", True), ("18", True), ("17.3.1", False), ("17", False)],
)
def test_simulated_plan_from_17_4(text: str, expected: bool) -> None:
    assert plan_available(text) is expected


@pytest.mark.parametrize("text", ODD)
def test_simulated_plan_refuses_odd_versions(text: str) -> None:
    with pytest.raises(ValueError):
        plan_available(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("16.7.8", (16, 7, 8)),
        ("iOS11.2", (11, 2)),
        ("iOS26", (26,)),
        ("18", (18,)),
        ("17.4b2", (17, 4)),  # the leading numbers
        ("17.4 beta 2", (17, 4)),
        ("", ()),
        ("beta", ()),
    ],
)
def test_model_targets_read_the_leading_numbers(text: str, expected: tuple[int, ...]) -> None:
    assert version_tuple(text) == expected


def test_os_too_old_compares_releases() -> None:
    assert os_too_old(8, "16.7.8") is not None  # iOS17 model on 16.7.8
    assert os_too_old(8, "17") is None
    assert os_too_old(8, "17.4b2") is None
    assert os_too_old(2, "11.1") is not None and os_too_old(2, "11.2") is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("17.4", (17, 4)),
        ("iOS 17.4", (17, 4)),
        ("iPadOS 18", (18,)),
        (" ios16.7.8 ", (16, 7, 8)),
        ("18", (18,)),
    ],
)
def test_lint_reads_os_option(text: str, expected: tuple[int, ...]) -> None:
    assert parse_os(text) == expected


@pytest.mark.parametrize("text", [*ODD, "iOS", "seventeen", "17..4"])
def test_lint_refuses_odd_os_option(text: str) -> None:
    with pytest.raises(UsageError, match="cannot read OS version"):
        parse_os(text)


@pytest.mark.parametrize(
    ("versions", "line"),
    [
        (["17.4.1", "17.4", "16.7.8"], "iOS 17.4"),
        (["18"], "iOS 18"),
        (["17.4b2"], "iOS 17.4b2"),
        ([""], ""),
        ([None], ""),
    ],
)
def test_matrix_os_line(versions: list[Any], line: str) -> None:
    rows = [
        ReportRow(model="m", device_class="c", status="succeeded", os_version=v) for v in versions
    ]
    assert _os_line(rows) == line


@pytest.mark.parametrize(
    ("text", "build"),
    [
        ("17.4", "21E133sim"),
        ("18", "22A112sim"),
        ("16.7.8", "20H338sim"),
        ("26.1", "23B13sim"),
        ("12.0", "16A119sim"),
    ],
)
def test_simulated_os_build(text: str, build: str) -> None:
    assert os_build("iPhone11,8", text) == build


@pytest.mark.parametrize("text", ODD)
def test_simulated_os_build_refuses_odd_versions(text: str) -> None:
    with pytest.raises(ValueError):
        os_build("iPhone11,8", text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("17.3.1", (17, 3, 1)),
        ("18", (18,)),
        ("17.4b2", (17, 0)),  # a non-numeric part counts as 0
        ("17.x.1", (17, 0, 1)),
        ("", (0,)),
    ],
)
def test_device_bringup_os_tuple(text: str, expected: tuple[int, ...]) -> None:
    assert os_tuple(text) == expected


def test_ddi_image_and_prepare_command() -> None:
    assert image_for("16.7.2") == ImageKey("16.7")
    assert image_for("16") == ImageKey("16.0")
    assert image_for("17.4b2") == ImageKey("")  # (17, 0): personalized
    for bad in ["", "beta"]:
        with pytest.raises(ConfigError, match="is not an iOS version"):
            image_for(bad)
    personalized = ImageKey("")
    assert prepare_command(ImageKey("16.7"), "16.7.2").endswith("--ios 16.7")
    assert prepare_command(personalized, "17.4.1").endswith("--ios 17.4")
    assert prepare_command(personalized, "17.4b2").endswith("--ios 17.4b2")
    assert prepare_command(personalized, "18").endswith("--ios 18")
    assert prepare_command(personalized, "").endswith("--ios 17.0")
    assert prepare_command(personalized, None).endswith("--ios 17.0")


@pytest.mark.parametrize(
    ("product_type", "text"),
    [
        ("iPhone11,8", "16.7.8"),
        ("iPhone11,8", "18.7"),
        ("iPad8,1", "26"),
        ("iPhone11,8", "12"),  # min_os 12.0: was refused as "before 12.0" (tuples: (12,) < (12, 0))
        ("iPhone11,8", "12.0.0"),
    ],
)
def test_farm_accepts_versions_in_range(product_type: str, text: str) -> None:
    assert check_os(product_type, text) == text


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("17.4b2", "is not like 17.4"),
        ("", "is not like 17.4"),
        ("18.7.1.2", "is not like 17.4"),
        ("19", "runs OS 12.0 to 18.x, not 19"),
        ("11.4", "runs OS 12.0 to 18.x, not 11.4"),
    ],
)
def test_farm_refuses_odd_or_out_of_range_versions(text: str, says: str) -> None:
    with pytest.raises(UsageError, match=re.escape(says)):
        check_os("iPhone11,8", text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("17.4", (17, 4)), ("16.7.8", (16, 7, 8)), ("18", (18,)), (" 17.4 ", (17, 4))],
)
def test_release_reads_dotted_numbers(text: str, expected: tuple[int, ...]) -> None:
    assert release(text) == expected
    assert parse(text).release == expected


@pytest.mark.parametrize("text", ["17.4b2", "", "v17.4", "17.4.post1", "1!17.4", "17.", ".4"])
def test_release_refuses_what_packaging_would_accept_or_not(text: str) -> None:
    with pytest.raises(ValueError, match=r"is not an OS version like 17\.4"):
        release(text)


def test_the_lenient_readers_and_the_display_form() -> None:
    assert leading("iOS17.4b2") == (17, 4) and leading("") == ()
    assert major_minor("17.4.x") == (17, 4)  # only the first two parts are read
    assert short("17.4.1") == "17.4" and short("18") == "18" and short("") == ""
    assert parse("17.4") == parse("17.4.0") and parse("17.10") > parse("17.9")
