"""Adapter families behind the ports: ``local`` (embedded default) and ``gcp``."""
