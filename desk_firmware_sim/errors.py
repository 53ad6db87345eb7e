"""The simulator's exceptions: one root, so callers can catch everything it means to raise."""

from __future__ import annotations


class SimError(Exception):
    """Root of every error the simulator raises on purpose."""


class ConfigError(SimError):
    """A setting is missing, malformed or out of range."""
