"""Tooling around the system, never imported by it.

Nothing under ``consultease`` outside this package imports it (a test checks);
the ``demo`` and ``bench`` commands load it inside their handlers, after checking
that the ``[demo]`` extra is installed. It sits on top of everything, the kiosk
and the simulator included.

* ``demo``             ``consultease demo``: the whole system on one machine.
* ``environment``      configured services, else private ones (``servers``,
  ``embedded_broker``), for the demo and the benchmarks.
* ``servers``          private PostgreSQL and Mosquitto instances on free ports.
* ``embedded_broker``  amqtt in-process, for machines without mosquitto.
* ``seed``             the demo's faculty, and a 241-faculty campus roster.
* ``screenshots``      the README's kiosk screenshots, rendered offscreen.
* ``terminal_board``   the headless board (rich).
* ``bench``            ``consultease bench`` and the listener and kiosk benchmarks.
"""
