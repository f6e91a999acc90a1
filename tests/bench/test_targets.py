"""The bench's verdicts are computed from the measured figures (no I/O: `bench/targets.py`)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import targets  # noqa: E402


def test_a_rate_is_met_at_or_above_its_bound() -> None:
    assert targets.at_least("rate", 2000, 1000, 2.0).met
    assert not targets.at_least("rate", 1999, 1000, 2.0).met


def test_a_latency_is_met_at_or_below_its_bound() -> None:
    assert targets.at_most("p99", 15, 10, 1.5).met
    assert not targets.at_most("p99", 15.1, 10, 1.5).met


def test_the_printed_line_says_the_ratio_and_the_verdict() -> None:
    line = targets.at_least("dispatcher vs Celery", 1500, 1000, 2.0).line()
    assert "1.50" in line and ">= 2" in line and line.endswith("NOT met")
    assert targets.at_most("memory", 110, 100, 1.2).line().endswith(" met")


def test_the_summary_file_gives_back_every_verdict(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    summary = tmp_path / "summary.jsonl"
    monkeypatch.setenv(targets.SUMMARY_VARIABLE, str(summary))
    written = [targets.at_least("a", 3, 2, 1.0), targets.at_most("b", 3, 2, 1.2)]
    targets.report(written[:1])
    targets.report(written[1:])  # each bench script appends its own
    assert targets.read(summary) == written
    assert [v.met for v in targets.read(summary)] == [True, False]
