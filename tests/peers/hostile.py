"""The hostile-input corpus, made by code at test time (no large binary is committed).

Every item is built byte by byte, small on the wire and expensive for a
naive reader:

- e-mails: 10,000 MIME parts, 1,000 nesting levels, a 1 MB header, invalid
  UTF-8 and NUL bytes, broken base64, any file as an attachment;
- files: a zip bomb (1 GiB of zeros in about 1 MB), a PDF bomb (a page whose
  content stream inflates to 1 GiB), a pixel flood (a valid 50,000 x 50,000
  PNG of about 300 KB), a polyglot (a real JPEG that is also a ZIP holding
  an HTML page with a script);
- file names that try path traversal, control characters and bidi tricks;
- ``multipart_body``: a multipart/form-data body written by hand, because
  HTTP clients escape the very bytes these tests need to send raw.

Each input carries a unique ``marker`` so a test finds its own quarantine
entry among the others (``quarantined``). ``peak_rss_mb`` reads a process's
high-water mark of resident memory from ``/proc``, for the memory bounds.
"""

from __future__ import annotations

import base64
import hashlib
import io
import sqlite3
import struct
import uuid
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, make_msgid
from functools import lru_cache
from pathlib import Path

from gateway.store.blobs import BlobStore

MiB = 1024 * 1024
GiB = 1024 * MiB
HEAD = "From: Amina <amina@example.ma>\r\nTo: contact@cashplus.ma\r\n"


def marker() -> str:
    """A unique token to put in an input and find it again in the store."""
    return f"hostile-{uuid.uuid4().hex}"


# -- e-mails ---------------------------------------------------------------------
def _envelope(tag: str, extra_headers: str = "") -> bytes:
    return (
        HEAD
        + f"Subject: {tag}\r\n"
        + f"Date: {format_datetime(datetime.now(UTC))}\r\n"
        + f"Message-ID: {make_msgid(tag[:20], domain='example.ma')}\r\n"
        + "MIME-Version: 1.0\r\n"
        + extra_headers
    ).encode()


def good_mail(tag: str) -> bytes:
    """An ordinary complaint, the one that must get through right after a hostile one."""
    return (
        _envelope(tag)
        + b"Content-Type: text/plain; charset=utf-8\r\n\r\n"
        + "Bonjour, mon transfert de 800 DH n'est pas arrivé à Fès.\r\n".encode()
    )


def many_parts_mail(tag: str, count: int = 10_000) -> bytes:
    parts = b"".join(
        b"--B\r\nContent-Type: text/plain\r\n\r\npart %d\r\n" % index for index in range(count)
    )
    return (
        _envelope(tag, "Content-Type: multipart/mixed; boundary=B\r\n")
        + b"\r\n"
        + parts
        + b"--B--\r\n"
    )


def nested_mail(tag: str, depth: int = 1_000) -> bytes:
    opening = b"".join(
        b"--B%d\r\nContent-Type: multipart/mixed; boundary=B%d\r\n\r\n" % (level, level + 1)
        for level in range(depth)
    )
    leaf = b"--B%d\r\nContent-Type: text/plain\r\n\r\ndeep\r\n" % depth
    closing = b"".join(b"--B%d--\r\n" % level for level in reversed(range(depth + 1)))
    return (
        _envelope(tag, "Content-Type: multipart/mixed; boundary=B0\r\n")
        + b"\r\n"
        + opening
        + leaf
        + closing
    )


def huge_header_mail(tag: str, size: int = MiB) -> bytes:
    """One header field of ``size`` bytes, folded into 78-character lines as RFC 5322 allows."""
    line = b" " + b"x" * 76 + b"\r\n"
    folded = b"X-Padding:" + line * (size // len(line))
    return _envelope(tag) + folded + b"Content-Type: text/plain\r\n\r\nbody\r\n"


def bad_bytes_mail(tag: str) -> bytes:
    """Declared UTF-8 but carrying invalid sequences, and NUL bytes in headers and body."""
    return (
        _envelope(tag, "X-Note: nul\x00here\r\n")
        + b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        + b"Bonjour \x00\x00 mon transfert \xff\xfe\xc3\x28\xed\xa0\x80 n'est pas arriv\xe9.\r\n"
    )


def broken_base64_mail(tag: str) -> bytes:
    """A base64 text part with characters outside the alphabet and no padding, and a
    base64 attachment cut in the middle of a quantum."""
    text = base64.b64encode("Mon retrait a échoué au guichet de Tanger.".encode()).decode()
    broken_text = text[:10] + "!!**%%" + text[10:].rstrip("=")
    attachment = base64.b64encode(b"%PDF-1.4\n" + b"0" * 300).decode()[:-3]
    return (
        _envelope(tag, "Content-Type: multipart/mixed; boundary=B\r\n")
        + b"\r\n--B\r\nContent-Type: text/plain; charset=utf-8\r\n"
        + b"Content-Transfer-Encoding: base64\r\n\r\n"
        + broken_text.encode()
        + b"\r\n--B\r\nContent-Type: application/pdf; name=recu.pdf\r\n"
        + b"Content-Disposition: attachment; filename=recu.pdf\r\n"
        + b"Content-Transfer-Encoding: base64\r\n\r\n"
        + attachment.encode()
        + b"\r\n--B--\r\n"
    )


def attachment_mail(tag: str, name: str, data: bytes, content_type: str) -> bytes:
    """A complaint with ``data`` attached under ``name`` (written raw, RFC 2231 not applied)."""
    encoded = base64.encodebytes(data).replace(b"\n", b"\r\n")
    quoted = name.replace("\\", "\\\\").replace('"', '\\"')
    return (
        _envelope(tag, "Content-Type: multipart/mixed; boundary=B\r\n")
        + b"\r\n--B\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        + "Voici la pièce jointe de ma réclamation.\r\n".encode()
        + f"--B\r\nContent-Type: {content_type}\r\n".encode()
        + f'Content-Disposition: attachment; filename="{quoted}"\r\n'.encode()
        + b"Content-Transfer-Encoding: base64\r\n\r\n"
        + encoded
        + b"--B--\r\n"
    )


# -- files -----------------------------------------------------------------------
def _deflate_blocks(total: int, byte: bytes = b"\0", chunk: int = MiB) -> bytes:
    """A raw deflate stream (no header) of ``total`` copies of ``byte``.

    One chunk is compressed once, ended by a full flush (which resets the
    dictionary, so every later chunk compresses to the same bytes), and that
    block is repeated: a gigabyte costs a millisecond to build.
    """
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = compressor.compress(byte * chunk) + compressor.flush(zlib.Z_FULL_FLUSH)
    final = zlib.compressobj(9, zlib.DEFLATED, -15).flush(zlib.Z_FINISH)
    return block * (total // chunk) + final


def _checksums(total: int, byte: bytes = b"\0", chunk: int = MiB) -> tuple[int, int]:
    """(crc32, adler32) of ``total`` copies of ``byte``."""
    buffer = byte * chunk
    crc, adler = 0, 1
    for _ in range(total // chunk):
        crc = zlib.crc32(buffer, crc)
        adler = zlib.adler32(buffer, adler)
    return crc, adler


@lru_cache(maxsize=2)
def zip_bomb(expanded: int = GiB) -> bytes:
    """A valid ZIP with one member, ``zeros.txt``, that inflates to ``expanded`` bytes."""
    stream = _deflate_blocks(expanded)
    crc, _adler = _checksums(expanded)
    name = b"zeros.txt"
    local = struct.pack(
        "<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0x21, crc, len(stream), expanded, len(name), 0
    )
    central = struct.pack(
        "<IHHHHHHIIIHHHHHII",
        0x02014B50, 20, 20, 0, 8, 0, 0x21, crc, len(stream), expanded,
        len(name), 0, 0, 0, 0, 0, 0,
    )  # fmt: skip
    offset = len(local) + len(name) + len(stream)
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(central) + len(name), offset, 0)
    return local + name + stream + central + name + end


def _pdf(objects: list[bytes]) -> bytes:
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
        b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    )
    return out.getvalue()


@lru_cache(maxsize=2)
def pdf_bomb(expanded: int = GiB) -> bytes:
    """A one-page A4 PDF whose content stream (FlateDecode) inflates to ``expanded`` spaces."""
    _crc, adler = _checksums(expanded, b" ")
    stream = b"\x78\xda" + _deflate_blocks(expanded, b" ") + struct.pack(">I", adler)
    return _pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R >>",
            b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream)
            + stream
            + b"\nendstream",
        ]
    )


@lru_cache(maxsize=2)
def many_objects_pdf(count: int = 150_000) -> bytes:
    """A one-page PDF carrying ``count`` small objects nobody refers to (S3 of the review:
    each costs qpdf and poppler time, the file stays under the web form's size cap)."""
    return _pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>",
            *([b"<< /A 1 >>"] * count),
        ]
    )


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))


@lru_cache(maxsize=2)
def pixel_flood_png(side: int = 50_000) -> bytes:
    """A valid 1-bit PNG of ``side`` x ``side`` white pixels (2.5 gigapixels in ~300 KB)."""
    row = b"\x00" + b"\xff" * ((side + 7) // 8)
    rows_per_block = 1_000
    compressor = zlib.compressobj(9)
    head = compressor.compress(row * rows_per_block) + compressor.flush(zlib.Z_FULL_FLUSH)
    # After the zlib header, every full-flushed block of identical rows is identical.
    again = zlib.compressobj(9)
    again.compress(row * rows_per_block)
    again.flush(zlib.Z_FULL_FLUSH)
    block = again.compress(row * rows_per_block) + again.flush(zlib.Z_FULL_FLUSH)
    adler = 1
    for _ in range(side // rows_per_block):
        adler = zlib.adler32(row * rows_per_block, adler)
    data = head + block * (side // rows_per_block - 1) + b"\x03\x00" + struct.pack(">I", adler)
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", data)
        + _png_chunk(b"IEND", b"")
    )


POLYGLOT_SCRIPT = b"<html><body><script>alert('polyglot')</script></body></html>"


def polyglot_jpeg() -> bytes:
    """A real JPEG (it decodes) whose comment holds HTML, followed by a ZIP of an HTML page."""
    from PIL import Image

    picture = io.BytesIO()
    Image.new("RGB", (64, 48), (30, 120, 200)).save(picture, format="JPEG", quality=80)
    jpeg = picture.getvalue()
    comment = b"\xff\xfe" + struct.pack(">H", len(POLYGLOT_SCRIPT) + 2) + POLYGLOT_SCRIPT
    archive = io.BytesIO()
    import zipfile

    with zipfile.ZipFile(archive, "w") as members:
        members.writestr("index.html", POLYGLOT_SCRIPT)
    # SOI, the HTML comment, then the rest of the JPEG; ZIP readers look from the end.
    return jpeg[:2] + comment + jpeg[2:] + archive.getvalue()


def small_png() -> bytes:
    from PIL import Image

    picture = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(picture, format="PNG")
    return picture.getvalue()


# Names that try to leave the upload folder, hide their extension or break a header.
TRAVERSAL_NAMES = (
    "../../../../../../tmp/intake-escape.png",
    "..\\..\\..\\windows\\intake-escape.png",
    "/etc/cron.d/intake-escape.png",
    "re\x00cu\x07\x1b[31m\x7f.png",
    "photo\u202egnp.exe\u202c.png",
)
FORBIDDEN_IN_STORED_NAMES = ("/", "\\", "\x00", "\x07", "\x1b", "\x7f", "\u202e", "..")


# -- HTTP ------------------------------------------------------------------------
@dataclass(frozen=True)
class FilePart:
    field: str
    filename: bytes
    data: bytes
    content_type: str = "application/octet-stream"


def multipart_body(
    fields: dict[str, str], files: list[FilePart], boundary: str = "hostileBoundary7MA4YWxk"
) -> tuple[bytes, str]:
    """(body, content type) of a multipart/form-data request, file names as raw bytes."""
    out = io.BytesIO()
    for name, value in fields.items():
        out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode())
        out.write(value.encode("utf-8", "surrogateescape") + b"\r\n")
    for part in files:
        out.write(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{part.field}"; '.encode()
            + b'filename="'
            + part.filename
            + b'"\r\n'
            + f"Content-Type: {part.content_type}\r\n\r\n".encode()
        )
        out.write(part.data + b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"


# -- the store and the process, as an operator would look at them -----------------
@dataclass(frozen=True)
class Quarantined:
    channel: str
    reason_code: str
    reason: str
    stored_at: str
    sha256: str


def quarantined(data_dir: Path, needle: bytes, channel: str | None = None) -> Quarantined | None:
    """The quarantine entry whose raw input contains ``needle`` (the store is SQLite)."""
    database = data_dir / "intake.db"
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30) as connection:
        rows = connection.execute(
            "SELECT channel, reason_code, reason, stored_at, sha256 FROM quarantine "
            "ORDER BY created_at DESC"
        ).fetchall()
    for row in rows:
        item = Quarantined(*row)
        if channel is not None and item.channel != channel:
            continue
        # A refused input may be kept as its head only: read what ``stored_at`` holds.
        if needle in blob_bytes(data_dir, item.stored_at.rpartition(":")[2]):
            return item
    return None


def quarantined_file(data_dir: Path, data: bytes, channel: str) -> Quarantined | None:
    """The newest quarantine entry of ``channel`` holding exactly ``data``."""
    digest = hashlib.sha256(data).hexdigest()
    database = data_dir / "intake.db"
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30) as connection:
        row = connection.execute(
            "SELECT channel, reason_code, reason, stored_at, sha256 FROM quarantine "
            "WHERE sha256 = ? AND channel = ? ORDER BY created_at DESC LIMIT 1",
            (digest, channel),
        ).fetchone()
    return Quarantined(*row) if row else None


def blob_bytes(data_dir: Path, sha256: str) -> bytes:
    """A stored blob, read through the gateway's own blob store (b"" when absent)."""
    blobs = BlobStore(data_dir / "blobs")
    return blobs.get(sha256) if blobs.exists(sha256) else b""


def complaint_messages(data_dir: Path) -> list[str]:
    """Every complaint's message JSON, newest first."""
    database = data_dir / "intake.db"
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30) as connection:
        rows = connection.execute("SELECT message FROM complaints ORDER BY created_at DESC")
        return [row[0] for row in rows]


def peak_rss_mb(pid: int) -> float:
    """The process's high-water mark of resident memory (``VmHWM``), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmHWM for process {pid}")
