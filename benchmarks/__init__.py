"""kgahp benchmarks: `python benchmarks/run.py [--jobs N] [--quick] [--json]` (not part of the
test suite; tests/bench checks the pure helpers and a tiny end-to-end run)."""
