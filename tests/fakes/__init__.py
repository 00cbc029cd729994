"""Reusable fakes and emulator shims for tests that exercise the GCP adapters offline."""
