"""HTML bodies turned into readable plain text, with quoted blocks kept marked.

Raw mail -> parse -> **html** (when a part is HTML only) -> quotes -> complaint.

Built on the stdlib ``html.parser``: block elements and ``<br>`` become line
breaks, list items get a dash, table cells a tab, ``script``/``style``/``head``
vanish, entities are decoded. Text inside ``<blockquote>`` (and the quote
containers of Gmail, Outlook, Yahoo and Apple Mail) is prefixed with ``> `` so
that ``quotes.strip_quotes`` treats an HTML reply like a plain-text one.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

_BLOCK = frozenset(
    {
        *("address", "article", "aside", "blockquote", "center", "dd", "div", "dl", "dt"),
        *("fieldset", "figcaption", "figure", "footer", "form", "header", "hr", "li", "main"),
        *("h1", "h2", "h3", "h4", "h5", "h6", "nav", "ol", "p", "pre", "section", "table"),
        *("tbody", "thead", "tfoot", "tr", "ul"),
    }
)
_HIDDEN = frozenset({"script", "style", "head", "title", "template", "noscript", "xml"})
_VOID = frozenset({"br", "hr", "img", "meta", "link", "input", "col", "area", "base", "wbr"})
# Outlook's reply header (divRplyFwdMsg) is deliberately absent: it wraps only
# the "De : / Envoyé :" block, not the quoted text after it, which
# quotes.strip_quotes finds from that header block instead.
_QUOTE_CLASSES = re.compile(r"gmail_quote|yahoo_quoted|moz-cite-prefix")
_SPACES = re.compile(r"[ \t\r\n\f\u00a0]+")


def html_to_text(html: str) -> str:
    """Readable text from an HTML document or fragment."""
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    return parser.text()


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.line: list[str] = []
        self.hidden = 0
        self.quote_depth = 0
        self.pre = 0
        # Tags that opened a quote, so the matching end tag closes it.
        self.stack: list[tuple[str, bool]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN:
            self.hidden += 1
            return
        if tag in _VOID:
            self._void(tag)
            return
        quoting = tag == "blockquote" or _is_quote_container(dict(attrs))
        self.stack.append((tag, quoting))
        if tag in _BLOCK or quoting:
            self.newline()
        if quoting:
            self.quote_depth += 1
        if tag == "pre":
            self.pre += 1
        elif tag == "li":
            self.line.append("- ")
        elif tag in ("td", "th") and self.line:
            self.line.append("\t")

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN:
            self.hidden = max(0, self.hidden - 1)
            return
        # Close up to the matching open tag: mail HTML is often unbalanced.
        closed: list[tuple[str, bool]] = []
        for index in range(len(self.stack) - 1, -1, -1):
            if self.stack[index][0] == tag:
                closed = self.stack[index:]
                del self.stack[index:]
                break
        quotes_closed = sum(quoting for _name, quoting in closed)
        if tag in _BLOCK or quotes_closed:
            # Flush first: the last quoted line still belongs inside the quote.
            self.newline()
        self.quote_depth -= quotes_closed
        if tag == "pre":
            self.pre = max(0, self.pre - 1)

    def handle_data(self, data: str) -> None:
        if self.hidden:
            return
        if self.pre:
            first, *rest = data.split("\n")
            self.line.append(first)
            for piece in rest:
                self.newline(force=True)
                self.line.append(piece)
            return
        self.line.append(_SPACES.sub(" ", data))

    def _void(self, tag: str) -> None:
        if tag == "br":
            self.newline(force=True)
        elif tag == "hr":
            self.newline()

    def newline(self, force: bool = False) -> None:
        text = "".join(self.line)
        text = text.rstrip(" ") if self.pre else text.strip(" ")
        self.line = []
        if text or force:
            prefix = "> " * self.quote_depth
            self.lines.append(prefix + text if text else prefix.rstrip())

    def text(self) -> str:
        self.newline()
        return "\n".join(self.lines)


def _is_quote_container(attrs: dict[str, str | None]) -> bool:
    return bool(_QUOTE_CLASSES.search(attrs.get("class") or ""))
