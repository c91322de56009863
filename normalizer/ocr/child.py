"""The sandboxed child process that decodes untrusted files: ``python -m normalizer.ocr.child``.

``checks.inspect_scan`` / ``job.run_ocr`` (parent, under ``sandbox.run_limited``)
-> **child** ``inspect|ocr`` (JSON spec on stdin) -> ``engine`` -> JSON answer
on stdout. A file that crashes or exhausts it costs this process, never the
worker. Exit 70 means our own code failed (not the file's fault).
"""

from __future__ import annotations

import json
import sys

from normalizer.ocr.sandbox import INTERNAL_ERROR


def _main(mode: str) -> int:
    from normalizer.ocr import engine

    spec = json.loads(sys.stdin.buffer.read())
    if mode == "inspect":
        answer = engine.inspect(spec)
    else:
        try:
            answer = engine.ocr_document(spec).to_json()
        except engine.REFUSALS as exc:
            answer = {"rejected": exc.code, "params": exc.params}
    sys.stdout.write(json.dumps(answer, ensure_ascii=False, default=str))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(_main(sys.argv[1] if len(sys.argv) > 1 else "ocr"))
    except MemoryError:
        sys.stderr.write("MemoryError\n")
        sys.exit(1)
    except Exception as exc:
        import traceback

        traceback.print_exc()
        sys.stderr.write(f"{type(exc).__name__}: {exc}\n")
        sys.exit(INTERNAL_ERROR)
