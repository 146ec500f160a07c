"""Webhooks after a night's analysis: one message per alert summary raised or closed as
recovered (``event``), retried with backoff, recorded, and never failing the night.

Two bodies: ``json`` (the summary as a structured object: sweep, night, cause, status,
findings with their figures) and ``slack`` (``{"text": …}``, which Slack's incoming
webhooks and the Slack-compatible endpoints of Mattermost, Discord and Teams read).

A message is retried on what may pass by itself — a connection error, a timeout, HTTP
429 or 5xx — up to ``notify_attempts`` times, waiting ``notify_backoff_s`` × 2^(n-1)
between attempts; any other 4xx is final at once (the URL or the body is wrong, and
retrying cannot help). Every message ends as one ``notification_deliveries`` row, shown
by ``anefarm alerts show``. The URL is stored cut after its first path segment: a Slack
webhook's path *is* its secret.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from orchestrator.errors import mask, shown_url
from orchestrator.settings import Settings

log = logging.getLogger(__name__)
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class Delivery:
    """How one message ended."""

    target: str  # the URL as it may be shown
    format: str
    ok: bool
    attempts: int
    http_status: int | None
    error: str | None


def slack_text(message: dict[str, Any]) -> str:
    """The summary as a few lines of Slack mrkdwn."""
    label = " [SIMULATED]" if message.get("simulated") else ""
    recovered = message.get("event") == "recovered"
    what = f"{message['kind']} recovered" if recovered else message["kind"]
    lines = [
        f"*anefarm{label}: {what}* in sweep `{message['sweep']}`, night"
        f" {message['night']} (alert {message['alert']}, {message['status']})",
        message["cause"],
    ]
    if recovered:  # what it was raised for, SAME again: the figures are no longer news
        lines.append("every member back to SAME; it was raised for:")
    findings = message.get("findings", [])
    for finding in findings[:10]:
        lines.append(f"• {finding['message']}")
    if len(findings) > 10:
        lines.append(f"… and {len(findings) - 10} more (`anefarm alerts show {message['alert']}`)")
    return "\n".join(lines)


def body_for(fmt: str, message: dict[str, Any]) -> dict[str, Any]:
    return {"text": slack_text(message)} if fmt == "slack" else message


def post(
    url: str,
    body: dict[str, Any],
    *,
    fmt: str,
    settings: Settings,
    sleep: Callable[[float], None] = time.sleep,
) -> Delivery:
    """POST ``body`` to ``url`` with retries; never raises."""
    status: int | None = None
    error: str | None = None
    attempts = 0
    with httpx.Client(timeout=settings.notify_timeout_s, follow_redirects=False) as client:
        for attempt in range(1, settings.notify_attempts + 1):
            attempts = attempt
            try:
                response = client.post(url, json=body)
            except httpx.HTTPError as failure:
                status, error = None, f"{type(failure).__name__}: {failure}"
            else:
                status = response.status_code
                if 200 <= status < 300:
                    return Delivery(shown_url(url), fmt, True, attempt, status, None)
                error = f"HTTP {status}: {response.text[:200]}"
                if status not in RETRY_STATUSES:
                    break  # the URL or the body is wrong: retrying cannot help
            if attempt < settings.notify_attempts:
                sleep(settings.notify_backoff_s * 2 ** (attempt - 1))
    text = mask(error or "failed").replace(url, shown_url(url))
    log.warning("webhook %s: %s after %d attempt(s)", shown_url(url), text, attempts)
    return Delivery(shown_url(url), fmt, False, attempts, status, text)


def wanted(kinds: list[str] | None, kind: str) -> bool:
    return kinds is None or kind in kinds


def now() -> datetime:
    return datetime.now(UTC)
