"""One module per command group; see ``consultease.cli``."""

from __future__ import annotations

import argparse

Subparsers = argparse._SubParsersAction
