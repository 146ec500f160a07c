"""Regressions wired into the product (issue 18): after a sweep's night, every series is
analysed against its baseline (``orchestrator.regress``), unclear latencies are confirmed
by one more run, and what changed is stored, grouped into alert summaries, triaged and
sent to webhooks::

    night's job final ─▶ night.analyse_night ─▶ inputs.histories (database → SeriesHistory)
                              │                  analysis.tonight (regress, per kind)
                              │  UNKNOWN ─▶ one confirmation run, then again
                              ▼
         causes.convert ─▶ store.store_checks / store_alerts ─▶ notify (webhooks)

    people: triage (alerts ack|fix|…|accept, sweep baseline) · views (alerts list/show)
    CI:     report (sweep report --json|--csv|--junit, --fail-on)
"""
