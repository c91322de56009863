"""OCR for postal letters: type and safety checks, text layers, recognition.

Where it sits: a letter channel (upload page, API, hot folder) calls
``inspect_scan`` on each file before anything is stored as a complaint (the
sender's fault is refused here, with a reason code), then the OCR worker runs
``run_ocr`` on the stored files. Everything that decodes untrusted bytes
(Pillow, poppler, tesseract) runs in a subprocess with a timeout and a memory
limit (``sandbox``), so a hostile file costs one worker a few seconds.
"""

from normalizer.ocr.checks import ScanLimits, ScanRejected, inspect_scan, sniff_type
from normalizer.ocr.job import OcrFailed, run_ocr
from normalizer.ocr.result import DocumentResult, PageResult

__all__ = [
    "DocumentResult",
    "OcrFailed",
    "PageResult",
    "ScanLimits",
    "ScanRejected",
    "inspect_scan",
    "run_ocr",
    "sniff_type",
]
