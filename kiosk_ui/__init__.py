"""The ConsultEase kiosk: PySide6 only. Models adapt the core's plain state,
views draw, and a bridge carries listener events onto the GUI thread.

Run it with ``consultease kiosk [--admin] [--fullscreen] [--layout …] [--large-type]``
(``app.run_kiosk``). Where things are, in the order data flows:

* ``bridge``       listener thread -> queued Qt signals (the only thread hop)
* ``model``        ``FacultyListModel``: one ``FacultyView`` per row in board order
  (available first, by surname; by department first when grouped), row-sized updates
* ``filtering``    ``FacultyFilterModel``: search, department, "available only", counts
* ``delegate``     ``CardDelegate``: lays out and paints a card per row (no widget per
  card), with an optional action button per card (``CardAction``)
* ``grid``         ``CardGrid``: cards in columns that follow the width, department headings
* ``strip``        ``DepartmentStrip``: the department filter and summary
* ``board``        the students' screen: header, strip, controls, grid, banner, idle reset
* ``keyboard``     ``OnScreenKeyboard``: attaches to any QLineEdit or QPlainTextEdit
* ``login``, ``admin_form``, ``admin_panel``: admin sign-in and faculty management
* ``consultation_flow``: "Request consultation" on the cards, ``consultation_form``
  (the form), ``consultation_status`` (the request, live), ``rfid`` (a USB card reader
  typing a UID); ``admin_requests``: open requests and the student register, for admins
* ``worker``       database calls off the GUI thread, results back by signal
* ``window``       ``KioskWindow``: wires the above, a stack of full-screen views
  (``show_view``), fills the screen without a window manager
* ``app``          the entry point: QApplication, signals, exit code
* ``names``, ``problems`` (pure): surnames and shortened names; failures in plain words
* ``theme``, ``widgets``, ``qtcompat``: colours (every text pair at 4.5:1 or more),
  sizes and wording, touch helpers (flick scrolling), and a workaround for a PySide6
  6.12.0 reference-count bug
* ``bench``        ``python -m consultease.tools.bench.kiosk``: stalls and latency under load
"""
