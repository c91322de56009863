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


@dataclass(frozen=True)
class DocumentResult:
    pages: list[PageResult] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "\n\n".join(page.text.strip() for page in self.pages if page.text.strip())

    @property
    def min_confidence(self) -> float:
        return min((page.confidence for page in self.pages), default=0.0)

    def low_confidence_pages(self, threshold: float) -> list[int]:
        return [page.index + 1 for page in self.pages if page.confidence < threshold]

    def to_json(self) -> dict[str, Any]:
        return {"pages": [asdict(page) for page in self.pages]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DocumentResult:
        return cls(pages=[PageResult(**page) for page in data.get("pages", [])])
