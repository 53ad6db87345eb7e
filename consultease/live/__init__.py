"""Live faculty state for readers (kiosk, terminal board, state publisher).

* ``listener``  one autocommit connection that LISTENs on ``faculty_changed``,
  reloads everything after every (re)connect, and hands changes to subscribers.
* ``cache``     the version-aware cache (cachetools) the listener keeps.
* ``feed``      ``LiveFeed``, what a kiosk needs from a source of live updates, and
  ``make_feed``: LISTEN (the default) or the broker, by a kiosk setting.
* ``broker_feed`` ``BrokerFeed``: the retained ``…/state`` topics as hints, rows read
  over an ordinary connection (a read replica or pgbouncer): no LISTEN per kiosk.
"""
