"""What OCR produced for one scanned document: text and confidence per page."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class PageResult:
    index: int
    text: str
    # Mean word confidence, 0-100 (100 for a PDF text layer, which is not guessed).
    confidence: float
    # "text-layer" (the PDF carried real text) or "ocr".
    method: str
    script: str | None = None
    languages: str | None = None
    # Degrees the page was turned (OSD) and straightened (deskew) before recognition.
    rotation: int = 0
    skew: float = 0.0
    # No words on a nearly uniform page (a duplex letter's empty back): nothing
    # to read, so it neither lowers the letter's confidence nor flags it.
    blank: bool = False
    # Why the page has no reading: "timeout" or "memory" (it ran out of its own
    # limits), "skipped" (earlier pages ran out, the rest were left to a person).
    error: str | None = None


@dataclass(frozen=True)
class DocumentResult:
    pages: list[PageResult] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "\n\n".join(page.text.strip() for page in self.pages if page.text.strip())

    @property
    def rated_pages(self) -> list[PageResult]:
        """The pages whose confidence counts: blank ones do not, unless every page is blank
        (a letter with nothing readable on it must still reach a person)."""
        written = [page for page in self.pages if not page.blank]
        return written or list(self.pages)

    @property
    def min_confidence(self) -> float:
        return min((page.confidence for page in self.rated_pages), default=0.0)

    @property
    def unread(self) -> bool:
        """No page was read at all: every one ran out of its limits (or was skipped)."""
        return bool(self.pages) and all(page.error for page in self.pages)

    def low_confidence_pages(self, threshold: float) -> list[int]:
        return [page.index + 1 for page in self.rated_pages if page.confidence < threshold]

    def to_json(self) -> dict[str, Any]:
        return {"pages": [asdict(page) for page in self.pages]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DocumentResult:
        return cls(pages=[PageResult(**page) for page in data.get("pages", [])])
