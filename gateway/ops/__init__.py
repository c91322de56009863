"""Operating the gateway: the operator page, quarantine and dead-letter replay, their CLIs.

Staff log in (``gateway.staff``) and see at ``/ops/`` what needs their eyes:
complaints per day by channel and language, the outbox backlog, the
acknowledgements due and overdue, quarantined inputs and dead letters, with
a button that replays an item once its cause is fixed. The same lists and
replays are ``intake quarantine`` and ``intake dead-letters`` in a shell.

- ``quarantine``: the replay dispatch to the channel's own ``replay`` hook
  (``channels/*/replay.py``); the items themselves are read from the store
  (``gateway.store.quarantine``).
- ``figures``: the numbers behind the page, per day and per channel (their
  queries are the store's, ``gateway.store.figures``).
- ``plots``: inline SVG charts drawn on the server (no script, no CDN).
- ``register_page``: ``/ops/register/``, the monthly register's charts and
  its XLSX/CSV (written by ``register``, the command's module).
- ``complaints`` and ``acks_by_hand``: one complaint's page, and the
  acknowledgement staff made by hand recorded from it.
- ``triage`` / ``call_backs``: the pages "to sort" (``/ops/triage/``) and
  "calls to return" (``/ops/callbacks/``), beside ``/ops/``.
- ``web``: the ``/ops/`` routes; ``cli``: the shell commands; ``adapter``:
  the component (in ``gateway.components``) that mounts both.
"""
