"""Contract tests: one suite per port, run against the local and the GCP adapters."""
