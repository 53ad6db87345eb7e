"""What admins do, each action audited in its own transaction.

* ``faculty``    add, edit, deactivate, set status, reset desk, with optimistic
  locking on the row version (``FacultyAdmin``).
* ``accounts``   admin logins: create, change password, log in, lockout.
* ``passwords``  the password policy and the argon2id hasher.
* ``audit``      writing and reading ``audit_log``.
"""
