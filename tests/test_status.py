"""One set of run states and exit codes: a Status must name a known state, and the run-record
table of the docs lists every state with its exit code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hpcfit.status import EXIT_INTERNAL, EXIT_WORK_FAILED, STATES, Status

DOCS = Path(__file__).resolve().parent.parent / "docs" / "running.md"


def test_a_status_names_a_known_state() -> None:
    assert Status(EXIT_WORK_FAILED, "shard_failed", "shard 3").final
    with pytest.raises(ValueError, match="unknown run state 'error'"):
        Status(EXIT_INTERNAL, "error")


def test_the_docs_table_lists_every_state() -> None:
    rows = re.findall(r"^\| `([a-z_]+)` \| (.+) \|$", DOCS.read_text(), flags=re.M)
    assert [name for name, _ in rows] == list(STATES)
    for name, text in rows:
        codes = re.findall(r"exit (\d+)", STATES[name])
        assert all(f"exit {c}" in text for c in codes), (name, text)
