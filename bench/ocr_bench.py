"""OCR pipeline against plain tesseract: pages per minute and character error rate.

Usage: python bench/ocr_bench.py SCANS_DIR [--workers N] [--json]

SCANS_DIR is the development scans folder (../shared/data/scans: images
and PDFs, ground truth in ``NAME.gt.txt`` or ``NAME.txt`` beside them; it is
never copied into the repository). Generated pages (French and Arabic
letters, turned and speckled, rendered with Noto fonts) are added.

Both runs read the same pages in the same run:
- the pipeline: ``normalizer.ocr.run_ocr`` (sandboxed job, OSD, deskew,
  despeckle, per-script languages, PDF text layer), N jobs at a time as the
  OCR worker runs them (default 2, ``INTAKE_OCR_WORKERS``);
- the yardstick: ``tesseract PAGE out -l ara+fra+eng``, one page at a time
  with tesseract's own threads (PDF pages rendered at 300 dpi first, not
  timed, since plain tesseract cannot open a PDF).
CER is computed after the normalisation the data's README asks for.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from normalizer.ocr import ScanLimits, inspect_scan, run_ocr
from normalizer.ocr.job import ScanFile
from normalizer.ocr.quality import character_error_rate
from tests.peers import scans

SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".pdf"}
LIMITS = ScanLimits(timeout=300)


@dataclass
class Page:
    name: str
    path: Path  # what the pipeline reads
    plain_path: Path  # what plain tesseract reads (a PDF rendered to PNG)
    kind: str
    truth: str | None
    ours_text: str = ""
    ours_seconds: float = 0.0
    plain_text: str = ""
    plain_seconds: float = 0.0


def truth_for(path: Path) -> str | None:
    for candidate in (path.with_suffix(".gt.txt"), path.with_suffix(".txt")):
        if candidate.exists():
            return candidate.read_text(encoding="utf-8")
    return None


def collect(folder: Path, work: Path) -> list[Page]:
    pages = []
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() not in SUFFIXES:
            continue
        data = path.read_bytes()
        info = inspect_scan(data, path.name, LIMITS)
        plain = path
        if info.kind == "pdf":
            plain = work / f"{path.stem}.png"
            subprocess.run(
                [
                    "pdftoppm",
                    "-r",
                    "300",
                    "-gray",
                    "-png",
                    "-singlefile",
                    str(path),
                    str(plain.with_suffix("")),
                ],
                check=True,
            )
        pages.append(Page(path.name, path, plain, info.kind, truth_for(path)))
    generated = [
        ("gen_fr_letter.png", scans.FRENCH_LETTER, False, 2.5, 0.01),
        ("gen_fr_page2.jpg", scans.FRENCH_LETTER_PAGE_2, False, -3.0, 0.005),
        ("gen_ar_letter.png", scans.ARABIC_LETTER, True, -2.0, 0.01),
        ("gen_ar_clean.tif", scans.ARABIC_LETTER, True, 1.0, 0.0),
    ]
    for name, lines, arabic, angle, noise in generated:
        path = work / name
        kind = {"png": "png", "jpg": "jpeg", "tif": "tiff"}[name.rsplit(".", 1)[1]]
        image = scans.render_page(lines, arabic=arabic, angle=angle, noise=noise)
        path.write_bytes(scans.encode(image, kind))
        pages.append(Page(name, path, path, kind, scans.truth(lines)))
    return pages


def run_pipeline(pages: list[Page], workers: int) -> float:
    def one(page: Page) -> None:
        start = time.perf_counter()
        page.ours_text = run_ocr([ScanFile(page.path, page.kind)], LIMITS).text
        page.ours_seconds = time.perf_counter() - start

    start = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, pages))
    return time.perf_counter() - start


def run_plain(pages: list[Page], work: Path) -> float:
    total = 0.0
    for page in pages:
        out = work / f"plain-{page.name}"
        start = time.perf_counter()
        subprocess.run(
            ["tesseract", str(page.plain_path), str(out), "-l", "ara+fra+eng"],
            check=True,
            capture_output=True,
        )
        page.plain_seconds = time.perf_counter() - start
        total += page.plain_seconds
        page.plain_text = out.with_suffix(out.suffix + ".txt").read_text(encoding="utf-8")
    return total


def report(pages: list[Page], ours_wall: float, plain_wall: float, workers: int) -> str:
    rows = [
        "| page | truth chars | pipeline CER | plain CER | pipeline s/page | plain s/page |",
        "|---|---|---|---|---|---|",
    ]
    ours_cer, plain_cer = [], []
    for page in pages:
        if page.truth is None:
            cells = ("—", "—")
        else:
            ours = character_error_rate(page.ours_text, page.truth)
            plain = character_error_rate(page.plain_text, page.truth)
            ours_cer.append(ours)
            plain_cer.append(plain)
            cells = (f"{ours:.1%}", f"{plain:.1%}")
        chars = len(page.truth) if page.truth else "no truth"
        rows.append(
            f"| {page.name} | {chars} | {cells[0]} | {cells[1]} "
            f"| {page.ours_seconds:.1f} | {page.plain_seconds:.1f} |"
        )
    count = len(pages)
    ours_ppm, plain_ppm = count / ours_wall * 60, count / plain_wall * 60
    mean_ours, mean_plain = sum(ours_cer) / len(ours_cer), sum(plain_cer) / len(plain_cer)
    summary = [
        "",
        "| run | pages | wall s | pages/min | mean CER (pages with truth) |",
        "|---|---|---|---|---|",
        f"| pipeline, {workers} jobs at a time | {count} | {ours_wall:.1f} | {ours_ppm:.1f} "
        f"| {mean_ours:.1%} |",
        f"| plain `tesseract -l ara+fra+eng`, one page at a time | {count} | {plain_wall:.1f} "
        f"| {plain_ppm:.1f} | {mean_plain:.1%} |",
        f"| **ratio** | | | **{ours_ppm / plain_ppm:.1f}×** | "
        f"**{mean_ours / mean_plain:.2f}× the plain CER** |",
    ]
    return "\n".join(["```markdown", *rows, *summary, "```"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scans", type=Path)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ocr-bench-") as folder:
        work = Path(folder)
        pages = collect(args.scans, work)
        ours_wall = run_pipeline(pages, args.workers)
        plain_wall = run_plain(pages, work)
        if args.json:
            print(json.dumps(figures(pages, ours_wall, plain_wall, args.workers)))
            return
        print(report(pages, ours_wall, plain_wall, args.workers))


def figures(pages: list[Page], ours_wall: float, plain_wall: float, workers: int) -> dict:
    rows = []
    for page in pages:
        truth = page.truth
        rows.append(
            {
                "name": page.name,
                "truth_chars": len(truth) if truth else None,
                "ours_cer": character_error_rate(page.ours_text, truth) if truth else None,
                "plain_cer": character_error_rate(page.plain_text, truth) if truth else None,
                "ours_s": page.ours_seconds,
                "plain_s": page.plain_seconds,
            }
        )
    return {"workers": workers, "ours_wall": ours_wall, "plain_wall": plain_wall, "pages": rows}


if __name__ == "__main__":
    main()
