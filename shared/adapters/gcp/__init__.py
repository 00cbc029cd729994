"""Adapters over the official google-cloud clients, imported lazily."""
