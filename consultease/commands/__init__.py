"""One module per command group; see ``consultease.cli``."""

from __future__ import annotations

import argparse

Subparsers = argparse._SubParsersAction


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1 (ids, sizes)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value
