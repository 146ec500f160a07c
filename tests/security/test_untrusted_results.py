"""Results from agents are untrusted input. A property-based fuzz (hypothesis) of the
result message (RunBatchResult, through the coordinator's real ingest on SQLite and a
real Redis) and of the runner's result.json (RunnerResult, through the agent's reader):
whatever arrives, nothing malformed reaches the result tables, each refusal is counted
once and logged once, and no other exception escapes."""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from sqlalchemy import func, select

from agents.devices.ios.runner import _validate as read_runner_result
from orchestrator import ingest as ingest_module
from orchestrator.delivery import screening
from orchestrator.errors import ProtocolError
from orchestrator.ingest import Ingestor, IngestOutcome
from orchestrator.protocol import RunBatchResult, RunnerResult
from orchestrator.store import models as db
from tests.contract.generate_fixtures import valid

FIXTURES = valid()
GOOD_RESULT: dict[str, Any] = FIXTURES["run-batch-result-ok"]
GOOD_RUNNER: dict[str, Any] = FIXTURES["runner-result-ok"]
RESULT_TABLES = (db.RunAttempt, db.Measurement, db.Verdict, db.OpPlacement)

LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40)
    | st.sampled_from(["", "ok", "neuralEngine", "iPhone11,8", "1e309", "-1", "../../etc"])
)
JSON = st.recursive(
    LEAVES,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)


def _slots(doc: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path to a value inside ``doc``."""
    items: Any = (
        doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else ()
    )
    for key, value in items:
        yield (*prefix, key)
        yield from _slots(value, (*prefix, key))


def _parent(doc: Any, path: tuple[Any, ...]) -> Any:
    for key in path[:-1]:
        doc = doc[key]
    return doc


@st.composite
def mutated(draw: st.DrawFn, base: dict[str, Any], inside: str | None = None) -> dict[str, Any]:
    """``base`` with 1-3 mutations: a value replaced by arbitrary JSON, a key removed, an
    unknown key added, a list blown past its bound; ``inside`` keeps them under one key."""
    doc = copy.deepcopy(base)
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        paths = [p for p in _slots(doc) if inside is None or p[0] == inside]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent, key = _parent(doc, path), path[-1]
        action = draw(st.sampled_from(["replace", "delete", "add", "grow"]))
        if action == "replace":
            parent[key] = draw(JSON)
        elif action == "delete" and isinstance(parent, dict):
            del parent[key]
        elif action == "add" and isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=12))] = draw(JSON)
        elif isinstance(parent[key], list) and parent[key]:
            parent[key] = parent[key] * draw(st.integers(min_value=2, max_value=2_500))
        else:
            parent[key] = draw(JSON)
    return doc


@pytest.fixture
def db_url(sqlite_url: str) -> str:
    """SQLite only: the fuzz is about what ingest lets through, not the backend (the
    ``ingestor`` of tests/pipeline/ingesting.py runs on this database)."""
    return sqlite_url


def _rows(ingestor: Ingestor, table: Any) -> int:
    with ingestor.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(table)) or 0)


def _refused_once(ingestor: Ingestor, caplog: pytest.LogCaptureFixture, payload: Any) -> None:
    raw_before, counted_before = _rows(ingestor, db.RawResult), sum(ingestor.rejected.values())
    logged_before = len([r for r in caplog.records if r.name == ingest_module.__name__])
    assert ingestor.ingest(payload) is IngestOutcome.INVALID
    assert all(_rows(ingestor, table) == 0 for table in RESULT_TABLES)
    assert _rows(ingestor, db.RawResult) == raw_before + 1
    assert sum(ingestor.rejected.values()) == counted_before + 1
    logged = [r for r in caplog.records if r.name == ingest_module.__name__][logged_before:]
    assert len(logged) == 1 and logged[0].levelno == logging.ERROR
    assert "\n" not in logged[0].getMessage()


def _refused_if_malformed(
    ingestor: Ingestor, caplog: pytest.LogCaptureFixture, payload: Any
) -> None:
    caplog.set_level(logging.ERROR, logger=ingest_module.__name__)
    try:
        RunBatchResult.model_validate(payload)
    except ValidationError:
        pass
    else:
        assume(False)  # the mutation happened to be a valid message: not this property
    _refused_once(ingestor, caplog, payload)


FUZZ = settings(max_examples=120, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow, HealthCheck.data_too_large])  # fmt: skip


@FUZZ
@given(payload=mutated(GOOD_RESULT))
def test_a_malformed_result_message_is_refused_counted_and_logged_once(ingestor, caplog, payload):
    _refused_if_malformed(ingestor, caplog, payload)


@FUZZ
@given(payload=mutated(GOOD_RESULT, inside="runner_result"))
def test_a_malformed_runner_result_inside_a_message_is_refused(ingestor, caplog, payload):
    _refused_if_malformed(ingestor, caplog, payload)


@FUZZ
@given(payload=st.one_of(JSON, st.binary(max_size=200).map(lambda b: b.decode("latin-1"))))
def test_anything_at_all_is_refused_without_escaping(ingestor, caplog, payload):
    caplog.set_level(logging.ERROR, logger=ingest_module.__name__)
    _refused_once(ingestor, caplog, payload)


def test_an_oversized_result_is_refused_before_validation(ingestor, caplog, monkeypatch):
    monkeypatch.setattr(screening, "MAX_RESULT_BYTES", 50_000)
    big = copy.deepcopy(GOOD_RESULT)
    big["failure"] = {"kind": "x", "message": "y" * 60_000, "infra": True}
    caplog.set_level(logging.ERROR, logger=ingest_module.__name__)
    _refused_once(ingestor, caplog, big)
    assert ingestor.rejected["oversize"] == 1
    with ingestor.sessions() as session:
        raw = session.scalars(select(db.RawResult)).one()
    assert "over the 50000-byte limit" in raw.error
    assert len(raw.payload) <= screening.RAW_KEPT_BYTES


def test_a_valid_result_is_still_accepted(ingestor):
    """The property above is not vacuous: the unmutated message validates (and, for a run
    this database does not know, is kept aside, not stored as results)."""
    RunBatchResult.model_validate(GOOD_RESULT)
    assert ingestor.ingest(GOOD_RESULT) is IngestOutcome.UNKNOWN_RUN
    assert sum(ingestor.rejected.values()) == 0


BATCH = GOOD_RUNNER["batch_id"]


@settings(max_examples=300, deadline=None)
@given(doc=mutated(GOOD_RUNNER))
def test_a_malformed_result_json_from_the_runner_is_a_protocol_error(doc):
    raw = json.dumps(doc).encode()
    try:
        result = read_runner_result(raw, BATCH, "UDID-1", False)
    except ProtocolError as error:
        assert "\n" not in error.one_line()
        return
    # Accepted only if it is a valid RunnerResult for this very batch and a real device.
    assert isinstance(result, RunnerResult)
    assert result.batch_id == BATCH and result.simulated is False


@settings(max_examples=150, deadline=None)
@given(raw=st.binary(max_size=400))
def test_bytes_that_are_not_even_json_are_a_protocol_error(raw):
    with pytest.raises(ProtocolError):
        read_runner_result(raw, BATCH, "UDID-1", False)
