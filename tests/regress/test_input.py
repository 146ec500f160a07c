"""Bad input is one clear error, never a traceback from deep inside."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from orchestrator.errors import UsageError
from orchestrator.regress import (
    BaselineRule,
    NightPoint,
    PlacedOp,
    RegressInputError,
    RegressSettings,
    Run,
    SeriesHistory,
    SeriesKey,
    analyse,
)
from tests.regress.factory import history, night, quiet

KEY = SeriesKey("m", "iPhone15,2", "all", simulated=False)


def test_nights_out_of_order_are_refused():
    ok = NightPoint(night=night(1), runs=(Run((1.0, 2.0)),))
    with pytest.raises(RegressInputError, match="oldest first"):
        SeriesHistory(KEY, (ok, NightPoint(night=night(0), runs=(Run((1.0,)),))))


def test_simulated_and_real_series_never_share_an_analysis():
    real = history(quiet(3), simulated=False, series="a")
    simulated = history(quiet(3), simulated=True, series="b")
    with pytest.raises(RegressInputError, match="SIMULATED and real"):
        analyse([real, simulated])


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: Run(()), "samples or a median"),
        (lambda: Run((1.0, float("nan"))), "finite and positive"),
        (lambda: Run((float("inf"), 2.0)), "finite and positive"),
        (lambda: Run((3.0, 0.0)), "finite and positive"),
        (lambda: Run((-1.0, 2.0)), "finite and positive"),
        (lambda: Run((1e308, 1e308)), "finite and positive"),  # fsum overflows: no traceback
        (lambda: NightPoint(night=night(0)), "no run"),
        (
            lambda: NightPoint(night=night(0), runs=(Run((1.0,)),), verdict="MAYBE"),
            "unknown verdict",
        ),
        (
            lambda: NightPoint(
                night=night(0), runs=(Run((1.0,)),), placement={"a": PlacedOp("npu")}
            ),
            "unknown unit",
        ),
        (
            lambda: SeriesHistory(KEY, (), BaselineRule(pinned_night=night(3))),
            "pinned baseline night",
        ),
    ],
)
def test_each_bad_value_gives_one_line(make, match):
    with pytest.raises(UsageError, match=match) as raised:
        make()
    assert "\n" not in raised.value.one_line()


def test_incoherent_settings_are_refused():
    with pytest.raises(ValidationError, match="p_alert"):
        RegressSettings(p_alert=0.2, p_same=0.05)
    with pytest.raises(ValidationError):
        RegressSettings(threshold=-0.1)
    with pytest.raises(ValidationError):
        RegressSettings(unknown=1)


def test_the_median_of_a_run_is_computed_when_not_given():
    assert Run((3.0, 1.0, 2.0, 10.0)).median_ms == 2.5


def test_no_series_and_unknown_nights_give_no_findings():
    from orchestrator.regress import findings

    assert findings(analyse([])) == []
    result = analyse([history(quiet(3))])
    assert findings(result, night(40)) == []
    assert len(findings(result, night(2))) == 7  # one per check
