"""Scans made during the tests: letters in French and Arabic, and hostile files.

Pages are rendered with real fonts (Debian's fonts-noto-core), turned a few
degrees and sprinkled with noise, so tesseract meets what a scanner makes.
The hostile files are built byte by byte: a PNG that claims 50,000 x 50,000
pixels (valid, highly compressible), a PDF with thousands of pages, an
executable named ``.pdf``, truncated TIFFs (one page and two), PDFs with an
/Encrypt dictionary, or with JavaScript and launch actions, spelled plainly,
with ``#xx`` escapes, or inside an object stream (any filter, predictor or
dictionary shape).
"""

from __future__ import annotations

import io
import random
import struct
import zlib
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

FONTS = Path("/usr/share/fonts/truetype/noto")
LATIN_FONT = FONTS / "NotoSans-Regular.ttf"
ARABIC_FONT = FONTS / "NotoSansArabic-Regular.ttf"

FRENCH_LETTER = (
    "Casablanca, le 12 mars 2025",
    "Objet : réclamation sur un transfert non reçu",
    "Madame, Monsieur,",
    "J'ai envoyé 1500 dirhams à mon frère depuis l'agence",
    "de Fès le 3 mars, mais il n'a jamais reçu l'argent.",
    "Je vous prie de bien vouloir vérifier ce transfert",
    "et de me rembourser les frais. Merci d'avance.",
)
FRENCH_LETTER_PAGE_2 = (
    "Suite de ma lettre du 12 mars 2025.",
    "Le numéro du transfert figure sur le reçu joint.",
    "Je reste à votre disposition pour tout complément.",
    "Veuillez agréer mes salutations distinguées.",
)
ARABIC_LETTER = (
    "الموضوع: شكاية بخصوص تحويل لم يصل",
    "السيدات والسادة،",
    "أرسلت مبلغا من المال إلى أخي من وكالة فاس",
    "ولكنه لم يتوصل بالمبلغ إلى حد الآن.",
    "أرجو منكم التحقق من هذا التحويل وإرجاع المصاريف.",
    "وتقبلوا فائق التقدير والاحترام.",
)
PAGE_SIZE = (1700, 1200)
DPI = 300


def render_page(
    lines: tuple[str, ...],
    *,
    arabic: bool = False,
    angle: float = 2.0,
    noise: float = 0.01,
    seed: int = 5,
    size: tuple[int, int] = PAGE_SIZE,
) -> Image.Image:
    """A grey page with ``lines`` typed on it, turned ``angle`` degrees, with speckle noise."""
    page = Image.new("L", size, 255)
    draw = ImageDraw.Draw(page)
    font = ImageFont.truetype(str(ARABIC_FONT if arabic else LATIN_FONT), 40)
    margin, y = 120, 140
    for line in lines:
        if arabic:
            draw.text(
                (size[0] - margin, y),
                line,
                font=font,
                fill=20,
                direction="rtl",
                anchor="ra",
                language="ar",
            )
        else:
            draw.text((margin, y), line, font=font, fill=20)
        y += 80
    page = page.rotate(angle, resample=Image.Resampling.BICUBIC, fillcolor=255, expand=False)
    chance = random.Random(seed)
    pixels = page.load()
    assert pixels is not None
    for _ in range(int(size[0] * size[1] * noise)):
        x, y = chance.randrange(size[0]), chance.randrange(size[1])
        pixels[x, y] = chance.choice((0, 90, 200))
    return page


def truth(lines: tuple[str, ...]) -> str:
    return "\n".join(lines)


def encode(image: Image.Image, kind: str) -> bytes:
    out = io.BytesIO()
    fmt = {"png": "PNG", "jpeg": "JPEG", "tiff": "TIFF", "pdf": "PDF"}[kind]
    extra = {"quality": 90} if kind == "jpeg" else {}
    image.save(out, format=fmt, dpi=(DPI, DPI), resolution=DPI, **extra)
    return out.getvalue()


def multipage_tiff(pages: list[Image.Image]) -> bytes:
    out = io.BytesIO()
    pages[0].save(
        out,
        format="TIFF",
        save_all=True,
        append_images=pages[1:],
        dpi=(DPI, DPI),
        compression="tiff_deflate",
    )
    return out.getvalue()


# -- PDFs written by hand --------------------------------------------------------
def _pdf(objects: list[bytes], trailer_extra: bytes = b"") -> bytes:
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(
        b"trailer\n<< /Size %d /Root 1 0 R %s>>\nstartxref\n%d\n%%%%EOF\n"
        % (len(objects) + 1, trailer_extra, xref)
    )
    return out.getvalue()


def text_pdf(lines: tuple[str, ...], pages: int = 1, catalog_extra: bytes = b"") -> bytes:
    """A born-digital PDF (a real text layer in Helvetica) with ``pages`` pages."""
    return _pdf(_pdf_objects(lines, pages, catalog_extra))


def _pdf_objects(lines: tuple[str, ...], pages: int, catalog_extra: bytes) -> list[bytes]:
    """Catalog, page tree, font, content, then the pages (objects 1, 2, ...)."""
    stream = (
        b"BT /F1 14 Tf 72 760 Td 18 TL "
        + b" ".join(
            b"(" + line.encode("latin-1").replace(b"(", b"\\(").replace(b")", b"\\)") + b") '"
            for line in lines
        )
        + b" ET"
    )
    first_page = 5
    kids = b" ".join(b"%d 0 R" % (first_page + i) for i in range(pages))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R " + catalog_extra + b">>",
        b"<< /Type /Pages /Kids [" + kids + b"] /Count %d >>" % pages,
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
    ]
    return (
        objects
        + [
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
            b"/Resources << /Font << /F1 3 0 R >> >> /Contents 4 0 R >>"
        ]
        * pages
    )


def many_pages_pdf(pages: int = 5000) -> bytes:
    return text_pdf(("Page",), pages=pages)


# What a PDF may carry to run code when opened: a document-level script (the
# Names tree), a script run on opening, a program launched on opening.
ACTIVE_CONTENT = {
    "names": b"/Names << /JavaScript << /Names [(a) << /S /JavaScript /JS (app.alert\\(1\\);) >>] "
    b">> >> ",
    "open_action": b"/OpenAction << /S /JavaScript /JS (app.alert\\('hello'\\);) >> ",
    "launch": b"/OpenAction << /S /Launch /F (cmd.exe) >> ",
}
# The same names written with ``#xx`` escapes, as the PDF syntax allows.
_ESCAPED_NAMES = {b"/JavaScript": b"/J#61vaScript", b"/JS ": b"/J#53 ", b"/Launch": b"/L#61unch"}


def escape_names(catalog_extra: bytes) -> bytes:
    for plain, escaped in _ESCAPED_NAMES.items():
        catalog_extra = catalog_extra.replace(plain, escaped)
    return catalog_extra


def _run_length(data: bytes) -> bytes:
    """RunLengthDecode with a run per byte (a 0 length byte before each): no name stays whole."""
    return b"".join(b"\x00" + bytes([byte]) for byte in data) + b"\x80"


def _png_rows(data: bytes, columns: int = 5) -> bytes:
    """Rows of ``columns`` bytes, each behind a PNG predictor tag (0): names cut every 5 bytes."""
    rows = (data[i : i + columns].ljust(columns, b" ") for i in range(0, len(data), columns))
    return b"".join(b"\x00" + row for row in rows)


# How an object stream's data is written: the packed bytes, and its /Filter
# (with /DecodeParms when a predictor is used).
_OBJECT_STREAM_ENCODINGS = {
    "flate": lambda body: (zlib.compress(body), b"/FlateDecode"),
    "hex": lambda body: (
        zlib.compress(body).hex().encode() + b">",
        b"[/ASCIIHexDecode /FlateDecode]",
    ),
    "run_length": lambda body: (_run_length(body), b"/RunLengthDecode"),
    "predictor": lambda body: (
        zlib.compress(_png_rows(body)),
        b"/FlateDecode /DecodeParms << /Predictor 12 /Columns 5 >>",
    ),
    # A real filter, but for images: no reader decodes objects with it.
    "image_filter": lambda body: (zlib.compress(body), b"/JBIG2Decode"),
}
# Extra entries in the object stream's dictionary (after /Type /ObjStm): a
# name that contains "obj", and a dictionary over 4 KiB. Neither changes what
# the stream holds.
OBJECT_STREAM_DICTIONARIES = {
    "plain": b"",
    "name_with_obj": b"/Xobj 1 ",
    "over_4_kib": b"/Padding [" + b"0 " * 2100 + b"] ",
}


def javascript_pdf(where: str = "open_action", *, escaped: bool = False) -> bytes:
    extra = ACTIVE_CONTENT[where]
    return text_pdf(FRENCH_LETTER, catalog_extra=escape_names(extra) if escaped else extra)


def object_stream_pdf(
    catalog_extra: bytes = b"",
    *,
    encoding: str = "flate",
    dictionary: str = "plain",
    packed: int = 1,
) -> bytes:
    """``text_pdf`` (one page) with one of its objects inside an object stream (PDF 1.5).

    ``packed``: the object put in the stream, the catalog (1, where
    ``catalog_extra`` goes) by default, or the font (3). ``encoding``: one of
    ``_OBJECT_STREAM_ENCODINGS``; ``flate`` is what writers use. ``dictionary``:
    one of ``OBJECT_STREAM_DICTIONARIES``.
    """
    objects = _pdf_objects(FRENCH_LETTER, 1, catalog_extra)
    prefix = b"%d 0 " % packed
    data, filters = _OBJECT_STREAM_ENCODINGS[encoding](prefix + objects[packed - 1])
    out = io.BytesIO()
    out.write(b"%PDF-1.5\n%\xe2\xe3\xcf\xd3\n")
    offsets = {}
    for number, text in enumerate(objects, 1):
        if number != packed:
            offsets[number] = out.tell()
            out.write(b"%d 0 obj\n" % number + text + b"\nendobj\n")
    stream_number = len(objects) + 1
    offsets[stream_number] = out.tell()
    out.write(
        b"%d 0 obj\n<< /Type /ObjStm %s/N 1 /First %d /Filter %s /Length %d >>\nstream\n"
        % (
            stream_number,
            OBJECT_STREAM_DICTIONARIES[dictionary],
            len(prefix),
            filters,
            len(data),
        )
        + data
        + b"\nendstream\nendobj\n"
    )
    xref_number = stream_number + 1
    offsets[xref_number] = out.tell()
    rows = [struct.pack(">BIH", 0, 0, 0xFFFF)]
    rows += [
        struct.pack(">BIH", 2, stream_number, 0)
        if number == packed
        else struct.pack(">BIH", 1, offsets[number], 0)
        for number in range(1, xref_number + 1)
    ]
    table = b"".join(rows)
    out.write(
        b"%d 0 obj\n<< /Type /XRef /Size %d /W [1 4 2] /Root 1 0 R /Length %d >>\nstream\n"
        % (xref_number, xref_number + 1, len(table))
        + table
        + b"\nendstream\nendobj\nstartxref\n%d\n%%%%EOF\n" % offsets[xref_number]
    )
    return out.getvalue()


def nested_action_pdf(depth: int = 600) -> bytes:
    """An opening script in an object of its own, behind arrays nested ``depth`` deep.

    qpdf stops reading at 500 levels and lists that object as null: a reader
    without such a limit would find the script after the arrays.
    """
    # Catalog, page tree, font, content and page are objects 1 to 5: the action is 6.
    objects = _pdf_objects(FRENCH_LETTER, 1, b"/OpenAction 6 0 R ")
    padding = b"[" * depth + b"]" * depth
    return _pdf(
        [*objects, b"<< /Padding " + padding + b" /S /JavaScript /JS (app.alert\\(1\\);) >>"]
    )


def encrypted_pdf() -> bytes:
    """A PDF whose trailer names a standard security handler (it asks for a password)."""
    plain = text_pdf(FRENCH_LETTER)
    encrypt = (
        b"/Encrypt << /Filter /Standard /V 1 /R 2 /Length 40 /P -44 "
        b"/O <" + b"11" * 32 + b"> /U <" + b"22" * 32 + b"> >> /ID [<00ff> <00ff>] "
    )
    return plain.replace(b"/Root 1 0 R ", b"/Root 1 0 R " + encrypt)


# -- other hostile files ----------------------------------------------------------
def huge_png(path: Path, side: int = 50_000) -> Path:
    """A valid 1-bit PNG of ``side`` x ``side`` white pixels (about 300 KB on disk)."""
    if path.exists():
        return path

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    compressor = zlib.compressobj(9)
    row = b"\x00" + b"\xff" * ((side + 7) // 8)
    parts = [compressor.compress(row * 1000) for _ in range(side // 1000)]
    parts.append(compressor.compress(row * (side % 1000)))
    parts.append(compressor.flush())
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", b"".join(parts))
        + chunk(b"IEND", b"")
    )
    return path


def executable_bytes() -> bytes:
    return Path("/bin/true").read_bytes()


def truncated_tiff() -> bytes:
    data = encode(render_page(FRENCH_LETTER, noise=0.0), "tiff")
    return data[: len(data) // 2]


# Cut points of a two-page TIFF: from about 70 % on, Pillow no longer fails
# with an OSError but with ``TypeError: Missing dimensions`` (in ``n_frames``).
TIFF_CUTS = (0.5, 0.7, 0.8, 0.95)


def truncated_multipage_tiffs() -> list[bytes]:
    """A two-page letter as a TIFF, cut at each of ``TIFF_CUTS`` (a scan copied too early)."""
    pages = [render_page(FRENCH_LETTER, noise=0.0), render_page(FRENCH_LETTER_PAGE_2, noise=0.0)]
    data = multipage_tiff(pages)
    return [data[: int(len(data) * cut)] for cut in TIFF_CUTS]


def pillow_error(data: bytes) -> type[Exception] | None:
    """The exception Pillow itself raises counting and decoding ``data``'s pages, if any."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            for index in range(getattr(image, "n_frames", 1)):
                image.seek(index)
                image.load()
    except Exception as exc:
        return type(exc)
    return None
