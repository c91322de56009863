"""Postal letters: the mailroom upload page, the upload API, the scanner hot folder, OCR.

Flow: a channel edge (``page``, ``api``, ``hotfolder``) hands the scans of
one letter to ``intake.accept_letter``: type and safety checks
(``normalizer.ocr.checks``), then the scans, the complaint (its outbox row
held) and a ``pending`` row in the letters table, committed before the
edge answers. The OCR ``worker`` takes letters from that table, reads them
in a sandboxed job and releases the complaint with its text. A refused
letter waits in quarantine; ``replay`` runs it through the same path once
the cause is fixed.

The adapter (routes, workers, commands) is in ``adapter``: importing this
package, for its models say, brings no web framework with it.
"""
