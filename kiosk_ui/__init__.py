"""The ConsultEase kiosk: PySide6 only. Models adapt the core's plain state,
views draw, and a bridge carries listener events onto the GUI thread.

Run it with ``consultease kiosk [--admin] [--fullscreen]`` (``app.run_kiosk``).
Where things are, in the order data flows:

* ``bridge``       listener thread -> queued Qt signals (the only thread hop)
* ``model``        ``FacultyListModel``: one ``FacultyView`` per row, row-sized updates
* ``filtering``    ``FacultyFilterModel``: search, department, "available only"
* ``delegate``     ``CardDelegate``: paints a card per row (no widget per card)
* ``board``        the students' screen: header, banner, filters, card grid, idle reset
* ``login``, ``admin_form``, ``admin_panel``: admin sign-in and faculty management
* ``worker``       database calls off the GUI thread, results back by signal
* ``window``       ``KioskWindow``: wires the above and owns their lifetimes
* ``app``          the entry point: QApplication, signals, exit code
* ``theme``, ``widgets``, ``qtcompat``: colours and sizes, a touch combo box,
  and a workaround for a PySide6 6.12.0 reference-count bug
* ``bench``        ``python -m consultease.tools.bench.kiosk``: stalls and latency under load
"""
