"""What admins do, each action audited in its own transaction.

* ``faculty``    add, edit, deactivate, set status, reset desk, always available,
  with optimistic locking: on the whole row version (the CLI's ``--expect-version``)
  or per field (``edit_fields``, the kiosk's admin panel) (``FacultyAdmin``).
* ``accounts``   admin logins: create, change password, log in, lockout.
* ``passwords``  the password policy and the argon2id hasher.
* ``audit``      writing and reading ``audit_log``.
"""
