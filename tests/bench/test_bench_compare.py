"""benchmarks/compare.py: medians over the committed runs (the figures docs/benchmarks.md
quotes come from these functions)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks import compare

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results"


def test_before_after_table_gives_medians_of_each_version() -> None:
    pre = compare.load([str(RESULTS / "reconciler-10k" / f"pre-{i}.json") for i in (1, 2, 3)])
    post = compare.load([str(RESULTS / "reconciler-10k" / f"post-{i}.json") for i in (1, 2, 3)])
    text = compare.table({"before": pre, "after": post})
    rates = sorted(r["scale"]["submit"]["per_second"] for r in pre)
    row = next(line for line in text.splitlines() if line.startswith("| submits per second"))
    assert row.split("|")[2].strip().startswith(f"{rates[1]:.0f} (")
    assert "before (median of 3)" in text and "after (median of 3)" in text
    assert "0b8d4e7" in text


def test_tiers_table_has_a_row_per_tier_with_the_range() -> None:
    runs = compare.load(sorted(str(p) for p in RESULTS.glob("scale-tiers*.json")))
    text = compare.tiers_table(runs)
    rows = [line for line in text.splitlines()[2:] if line.startswith("| ")]
    assert [r.split("|")[1].strip() for r in rows] == ["1,000", "10,000", "30,000", "100,000"]
    assert all(r.split("|")[6].strip() == "0" for r in rows)     # API requests per status


def test_bad_arguments_print_the_usage(capsys) -> None:  # type: ignore[no-untyped-def]
    assert compare.main(["nonsense"]) == 2
    assert "compare.py" in capsys.readouterr().err
