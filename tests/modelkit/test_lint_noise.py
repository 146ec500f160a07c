"""Lint that earns its exit code: chip names as the catalog spells them (commas, close
matches), layout transposes graded as notes, and JSON that agrees with its findings."""

from __future__ import annotations

import pytest

from orchestrator import catalog
from orchestrator.errors import UsageError


def test_chips_take_commas_repeats_and_spellings_of_catalog_names():
    assert [c.name for c in catalog.chips("A12,A14")] == ["A12", "A14"]
    assert [c.name for c in catalog.chips(["a12", " A14 , A12", "A17pro"])] == [
        "A12", "A14", "A17 Pro"]  # fmt: skip
    assert catalog.chip("a17-Pro").name == "A17 Pro"


@pytest.mark.parametrize(("typed", "suggested"), [("A17", "A17 Pro"), ("A18P", "A18 Pro")])
def test_a_name_the_catalog_extends_is_suggested_first(typed, suggested):
    with pytest.raises(UsageError) as info:
        catalog.chips(f"A12,{typed}")
    assert info.value.hint is not None
    assert info.value.hint.startswith(f"did you mean {suggested}")
    with pytest.raises(UsageError) as selected:
        catalog.select(typed)
    assert suggested in selected.value.one_line()


@pytest.mark.parametrize("bad", ["A99", "", " , ", "A12,,Z80"])
def test_unknown_or_missing_chips_are_usage_errors(bad):
    with pytest.raises(UsageError) as info:
        catalog.chips(bad)
    assert info.value.hint
