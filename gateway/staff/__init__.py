"""Staff accounts: users with scrypt-hashed passwords, sessions with CSRF tokens.

Roles: ``mailroom`` (the letters pages), ``operator`` (``/ops/``), ``admin``
(everything). ``require_staff`` / ``require_csrf`` (``gateway.lib.http.auth``)
protect a route and check the role; ``ADAPTER`` mounts the login, logout and
password pages and adds ``intake staff`` (audit trail included).
"""
