"""docs/benchmarks.md's performance block matches the committed records (runs no benchmark)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "benchmarks.md"
ACCEPT = "run `.venv/bin/python benchmarks/report.py --write` to accept"


def _report():
    """``benchmarks/report.py`` loaded by path (benchmarks/ is not a package on sys.path)."""
    spec = importlib.util.spec_from_file_location(
        "hpcfit_bench_report", ROOT / "benchmarks" / "report.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmarks_page_perf_block_matches_records() -> None:
    report = _report()
    records = report.newest_records(ROOT / "benchmarks" / "results")
    assert records, "no benchmark records in benchmarks/results/"
    expected = report.render(records)
    page = PAGE.read_text(encoding="utf-8")
    assert report.START in page and report.END in page, f"{PAGE.name} has no perf markers; {ACCEPT}"
    actual = report.extract_block(page)
    assert actual == expected, f"{PAGE.name} performance block differs from the records; {ACCEPT}"


def test_render_is_deterministic() -> None:
    report = _report()
    records = report.newest_records(ROOT / "benchmarks" / "results")
    assert report.render(records) == report.render(records)
    page = PAGE.read_text(encoding="utf-8")
    assert report.replace_block(page, report.extract_block(page)) == page


def test_caption_letters_hosts_only_when_records_come_from_several() -> None:
    report = _report()

    def record(cpu: str) -> dict:
        prov = {"hostname": "vm", "cpu_model": cpu, "cpu_count": 2, "git": {"commit": "abc1234"}}
        return {"generated_utc": "2026-12-05T00:00:00Z", "provenance": prov}

    first, second = report.BENCHMARKS[:2]
    one_host = report._caption({first: record("X"), second: record("X")})
    assert one_host.startswith("Host vm: X, 2 cores. Records:") and "[A]" not in one_host
    two_hosts = report._caption({first: record("X"), second: record("Y")})
    assert two_hosts.startswith("Hosts [A] vm: X, 2 cores; [B] vm: Y, 2 cores. Records:")
    assert f"`{first}` [A] 2026-12-05" in two_hosts and f"`{second}` [B] 2026-12-05" in two_hosts


def test_nrpt_efficiency_tie_uses_poisson_noise_of_round_trip_counts() -> None:
    report = _report()
    entry = {
        "hpcfit": [{"round_trips_hamon_convention": n} for n in (90, 100, 120)],
        "hamon": [{"round_trips": n} for n in (100, 100, 80)],
    }
    # medians 100 and 100: two standard errors of the ratio are 2·√(2/100) = 0.283
    assert report._efficiency_tied_or_better(entry, 0.72) is True
    assert report._efficiency_tied_or_better(entry, 0.71) is False
    assert report._efficiency_tied_or_better(entry, None) is None
    assert report._efficiency_tied_or_better({"hpcfit": [], "hamon": []}, 1.0) is None
