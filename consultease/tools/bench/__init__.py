"""Benchmarks: measured figures with their baselines from the same run.

* ``ingest``    ``consultease bench``: desks -> broker -> ingest -> database, with
  baselines (a) broker pass-through and (b) one UPDATE + NOTIFY per transaction
  in every round; ``report`` prints its table.
* ``traffic``   the desk traffic: a lean paho publisher process (realistic or flood).
* ``subscriber`` baseline (a)'s bare paho subscriber, a process of its own.
* ``cpu``       CPU seconds per process from /proc, the broker's pid, ``perf stat``.
* ``listener``  commit-to-subscriber latency of the listener alone.
* ``kiosk``     ``python -m consultease.tools.bench.kiosk``: GUI stalls and
  commit-to-paint latency (needs the ``[kiosk]`` extra).
* ``scratch``   scratch databases and benchmark rows.
* ``stats``     percentiles, spreads over rounds, latency over every message sent.
"""
