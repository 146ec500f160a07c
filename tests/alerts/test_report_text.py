"""The text form of `anefarm sweep report`: what a person reads in the morning."""

from __future__ import annotations

from orchestrator.alerts.report import CheckRow, NightReport, to_text


def check(status: str, series: str, message: str = "") -> CheckRow:
    return CheckRow(night="2026-11-24", device_class="iPhone11,8", series=series,
                    compute_units="all", simulated=True, check="latency", status=status,
                    message=message)  # fmt: skip


def night(checks: list[CheckRow], alerts: list[dict[str, object]], analysis: str) -> str:
    return to_text(NightReport(sweep="vision", night="2026-11-24", job_id="j1",
                               analysis=analysis, checks=checks, alerts=alerts))  # fmt: skip


def test_too_little_history_is_one_line_and_regressions_each_theirs() -> None:
    checks = [check("INSUFFICIENT_DATA", f"m{i}") for i in range(38)]
    checks += [check("SAME", "s"), check("REGRESSION", "slow", "latency +15 %")]
    text = night(checks, [], "analysed")
    lines = text.splitlines()
    assert lines[0] == "sweep vision, night 2026-11-24 (job j1): analysed"
    assert "  38 checks with too little history to compare yet" in text
    assert sum("INSUFFICIENT_DATA" in line for line in lines) == 2  # the counts and the summary
    assert any(line.startswith("  REGRESSION") and "slow latency" in line for line in lines)
    assert not any(" s latency" in line for line in lines)  # SAME is not listed


def test_the_header_and_an_alerts_age_read_as_english() -> None:
    alert = {"id": 7, "status": "untriaged", "new": False, "nights": 1, "kind": "latency",
             "cause": "iPhone11,8: latency +15 %"}  # fmt: skip
    text = night([check("REGRESSION", "slow", "latency +15 %")], [alert], "confirming")
    assert text.splitlines()[0].endswith(": a confirmation run is pending")
    assert "[untriaged, open 1 night] latency" in text
    assert "analysis analysed" not in night([], [], "analysed")
    assert "open 3 nights" in night([], [{**alert, "nights": 3}], "analysed")
