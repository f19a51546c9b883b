"""The README's performance block matches the committed benchmark records (runs no benchmark)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
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


def test_readme_perf_block_matches_records() -> None:
    report = _report()
    records = report.newest_records(ROOT / "benchmarks" / "results")
    assert records, "no benchmark records in benchmarks/results/"
    expected = report.render(records)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert report.START in readme and report.END in readme, f"README has no perf markers; {ACCEPT}"
    actual = report.extract_block(readme)
    assert actual == expected, f"README performance block differs from the records; {ACCEPT}"


def test_render_is_deterministic() -> None:
    report = _report()
    records = report.newest_records(ROOT / "benchmarks" / "results")
    assert report.render(records) == report.render(records)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert report.replace_block(readme, report.extract_block(readme)) == readme
