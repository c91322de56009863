"""Staff accounts: users with scrypt-hashed passwords, sessions with CSRF tokens.

Used by the mailroom's letter upload page and by later operator pages:
``require_staff`` / ``require_csrf`` (in ``gateway.staff.web``) protect a
route; ``ADAPTER`` mounts the login/logout pages and adds ``intake users``.
"""
