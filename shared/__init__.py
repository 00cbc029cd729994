"""opsuite shared core: config, errors, logging, events, ports, adapters and services."""

__version__ = "0.1.0"
