"""The broker side of MQTT security.

* ``config``       the Mosquitto configuration and example ACL we ship, read from
  this package's data files (``mosquitto.conf``, ``acl.example``).
* ``credentials``  broker logins: passwords in Mosquitto's own ``$7$`` hash format,
  per-user ACL blocks, and installing both into the broker's files.
"""
