"""Benchmarks: measured figures with their baselines from the same run.

* ``ingest``    ``consultease bench``: desks -> broker -> ingest -> database.
* ``listener``  commit-to-subscriber latency of the listener alone.
* ``kiosk``     ``python -m consultease.tools.bench.kiosk``: GUI stalls and
  commit-to-paint latency (needs the ``[kiosk]`` extra).
* ``scratch``   scratch databases and benchmark rows.
* ``stats``     percentiles.
"""
