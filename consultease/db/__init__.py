"""The database side: connections, migrations, table shapes, the read model, roles.

* ``connection`` opens psycopg connections and SQLAlchemy engines (UTC sessions,
  timeouts) and is the one place that knows which driver errors are retryable
  and how to describe a database URL without its password.
* ``migrate``    ``consultease db upgrade``: the numbered files of ``sql/``
  (shipped inside the package as ``consultease.db.sql``), each applied once.
* ``tables``     the SQLAlchemy Core description of every table: the one list
  of the faculty columns that every reader uses.
* ``readmodel``  faculty rows as ``FacultyView``, mapped by column name.
* ``roles``      the database roles and the transaction helper that turns a
  missing privilege into one clear error.
* ``notify_guard`` the NOTIFY queue: its usage, the sessions stalling it, and the
  guard that drops them (the ingest's sweeper, ``consultease health --fix``).
"""
