"""The ingest service: desk messages from the broker, applied to PostgreSQL.

* ``service``          ``IngestService``: paho callbacks -> bounded queue -> worker
  -> store -> acks after commit; the offline sweeper and the NOTIFY queue guard.
* ``transport``        the paho client it uses (buffered reads) and the protocol choice.
* ``store``            the only writer of desk-driven faculty state: batches under
  row locks, decided by ``consultease.ordering``.
* ``stats``            what the service has done, as a frozen snapshot.
* ``state_publisher``  retained ``…/state`` back to the desks after every change,
  coalesced per row, on a broker connection of its own (``StateService``).
* ``state_process``    that publisher in a supervised child process (the default).
* ``metrics``          Prometheus metrics of one service instance.
"""
