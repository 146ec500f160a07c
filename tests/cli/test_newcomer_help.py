"""``anefarm --help`` lists each command on one line when the terminal is wide enough:
a docstring whose first paragraph spans source lines showed its raw line breaks there
(lint's said "…input transpose)" then "are shown but predict nothing" on the next row)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.conftest import anefarm


@pytest.mark.parametrize("group", [[], ["sweep"], ["alerts"], ["devices"], ["tokens"], ["db"]])
def test_every_command_listing_is_one_row(tmp_path: Path, group: list[str]) -> None:
    out = anefarm(*group, "--help", home=tmp_path, COLUMNS="220")
    assert out.returncode == 0, out.stderr
    listing = out.stdout.split("Commands", 1)[1]
    rows = [line for line in listing.splitlines() if line.startswith("│")]
    assert rows, out.stdout
    continued = [row for row in rows if row.startswith("│   ")]  # no command name: a wrap
    assert not continued, continued
