"""The numbered migrations, shipped inside the wheel as ``consultease.db.sql``.

This folder is the one source of the schema; ``pyproject.toml`` maps it into the
package at build time and ``consultease.db.migrate`` reads it with ``importlib.resources``.
"""
