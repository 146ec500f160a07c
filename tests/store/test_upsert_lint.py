"""A model submitted again: the chips linted now replace their stored findings whole, so a
finding the rules no longer make (a layout transpose, now a note) does not linger; findings
for chips not linted now are kept."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

from sqlalchemy.orm import Session, sessionmaker

from orchestrator.dispatch import PreparedModel, upsert_model
from orchestrator.store import models as db
from orchestrator.store.engine import session_scope


@dataclass
class Artifact:
    sha256: str = "cd" * 32
    filename: str = "m.mlpackage"
    format: str = "mlpackage"
    size_bytes: int = 1


def finding(chip: str, rule: str = "transpose-a12", op: int = 3) -> dict:
    return {"rule_id": rule, "chip": chip, "op_index": op}


def test_relinted_chips_are_replaced_and_others_kept(sessions: sessionmaker[Session]) -> None:
    inventory = SimpleNamespace(to_json=lambda: {"ops": []}, ops=[])
    first = PreparedModel(path=None, inventory=inventory, chips=["A12", "A14"],  # type: ignore[arg-type]
                          lint=[finding("A12"), finding("A14", "large-upsample", 5)])  # fmt: skip
    again = PreparedModel(path=None, inventory=inventory, chips=["A12"], lint=[])  # type: ignore[arg-type]
    with session_scope(sessions) as session:
        upsert_model(session, first, Artifact())
    with session_scope(sessions) as session:
        upsert_model(session, again, Artifact())
    with sessions() as session:
        model = session.get(db.Model, "cd" * 32)
        assert model is not None and model.inspect_json is not None
        stored = model.inspect_json["lint"]
    assert stored == [finding("A14", "large-upsample", 5)]
