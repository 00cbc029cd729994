"""The embedded stack: DuckDB warehouse, directory object store, JSONL bus."""
