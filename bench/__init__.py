"""Benchmarks that print figures. Run each from the repository root as a module, e.g.
`python -m bench.delivery`, so `bot`, `storage` and `tests` import as packages."""
