"""Operating the gateway: the operator page, quarantine and dead-letter replay, their CLIs.

Staff log in (``gateway.staff``) and see at ``/ops/`` what needs their eyes:
complaints per day by channel and language, the outbox backlog, the
acknowledgements due and overdue, quarantined inputs and dead letters, with
a button that replays an item once its cause is fixed. The same lists and
replays are ``intake quarantine`` and ``intake dead-letters`` in a shell.

- ``quarantine``: quarantined inputs (list, show, mark resolved) and the
  replay dispatch to the channel's own ``replay`` hook.
- ``replayers``: those hooks for e-mail, the partner API and the web form
  (letters and the phone line keep theirs in ``channels.letters.replay``
  and ``channels.twilio.replay``).
- ``figures``: the numbers behind the page (SQL, per day, per channel).
- ``plots``: inline SVG charts drawn on the server (no script, no CDN).
- ``web``: the ``/ops/`` routes; ``cli``: the shell commands; ``adapter``:
  the entry in the channel table that mounts both.
"""
