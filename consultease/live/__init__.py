"""Live faculty state for readers (kiosk, terminal board, state publisher).

* ``listener``  one autocommit connection that LISTENs on ``faculty_changed``,
  reloads everything after every (re)connect, and hands changes to subscribers.
* ``cache``     the version-aware cache (cachetools) the listener keeps.
"""
