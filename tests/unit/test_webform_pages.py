"""The form page as rendered: the answer language left to the text, files to attach again."""

from __future__ import annotations

import html
from datetime import UTC, datetime

import pytest

from channels.webform.form import Submission, build_draft, validate
from channels.webform.i18n import BY_CODE, texts
from channels.webform.pages import Notice, Pages
from gateway.acks.texts import languages_for
from normalizer.assemble import assemble_message
from normalizer.contract import ComplaintMessage, Evidence
from normalizer.ocr import ScanLimits
from normalizer.pipeline import normalize

PAGES = Pages("Africa/Casablanca", 10 * 1024 * 1024)
EVIDENCE = Evidence(stored_at="blob:sha256:" + "0" * 64, sha256="0" * 64, size=1, content_type="x")
DARIJA = "salam, bghit n3ref 3lach lflous li sifet l khoya f Agadir ma wslatch hta daba, 3afak"
SPANISH = (
    "Buenos días, envié 1500 dirhams a mi hermana el 3 de noviembre y el dinero todavía "
    "no ha llegado. Les ruego que comprueben esta transferencia."
)


def language_select(page: str) -> str:
    start = page.index('id="f-preferred_language"')
    return html.unescape(page[start : page.index("</select>", start)])


def from_the_form(text: str, preferred_language: str) -> ComplaintMessage:
    """The message a web form submission becomes, as the acknowledgement sender reads it."""
    fields = {"phone": "0661234567", "text": text, "preferred_language": preferred_language}
    sub = Submission.from_form(fields, [])
    received = datetime(2026, 11, 26, 9, tzinfo=UTC)
    draft = normalize(build_draft(sub, validate(sub, ScanLimits()), received))
    return assemble_message(
        draft,
        complaint_id="c1",
        reference="CP-7K4M-9QXT",
        evidence=EVIDENCE,
        attachments=[],
        processed_at=received,
    )


@pytest.mark.parametrize("code", ["fr", "ar", "en", "es"])
def test_the_answer_language_starts_at_the_language_of_the_message(code: str) -> None:
    select = language_select(PAGES.form(BY_CODE[code], "token"))

    assert select.split("<option", 2)[1].startswith(' value="">')
    assert " selected" not in select


def test_a_chosen_answer_language_is_kept_when_the_form_comes_back() -> None:
    page = PAGES.form(BY_CODE["fr"], "token", values={"preferred_language": "ar"})

    assert '<option value="ar" selected>' in language_select(page)


def test_a_form_left_at_the_default_is_acknowledged_in_the_language_of_its_text() -> None:
    message = from_the_form(SPANISH, preferred_language="")

    assert message.customer.preferred_language is None
    assert languages_for(message) == ("es",)


def test_an_answer_language_the_customer_chose_wins_over_the_text() -> None:
    message = from_the_form(DARIJA, preferred_language="en")

    assert languages_for(message) == ("en",)


def test_a_page_sent_back_lists_the_files_to_attach_again_next_to_the_field() -> None:
    page = PAGES.form(BY_CODE["en"], "token", reattach=["receipt.pdf", "card.jpg"])

    block = page[page.index('id="f-attachments-reattach"') : page.index('id="f-attachments"')]
    assert "attach these files again" in block
    assert "<bdi>receipt.pdf</bdi>" in block and "<bdi>card.jpg</bdi>" in block
    assert "f-attachments-reattach" in page[page.index('id="f-attachments"') :].split(">")[0]


def test_a_notice_page_also_says_to_attach_the_files_again() -> None:
    page = PAGES.form(
        BY_CODE["es"], "token", notice=Notice("unavailable", {}), reattach=["recibo.png"]
    )

    notice = html.unescape(
        page[page.index('id="notice"') : page.index("</div>", page.index('id="notice"'))]
    )
    assert "vuelva a adjuntar estos archivos" in notice


def test_a_blank_form_asks_for_no_file_again() -> None:
    assert "f-attachments-reattach" not in PAGES.form(BY_CODE["fr"], "token")


@pytest.mark.parametrize("code", ["fr", "ar", "en", "es"])
def test_the_form_carries_the_privacy_notice_in_its_language(code: str) -> None:
    page = html.unescape(PAGES.form(BY_CODE[code], "token"))
    notice = page[page.index('id="privacy"') : page.index("</section>", page.index('id="privacy"'))]
    words = texts(code)
    assert words["privacy_heading"] in notice
    # Law 09-08's rights, how to use them, and the authority to turn to.
    assert "09-08" in notice and "contact@cashplus.ma" in notice and "CNDP" in notice
    assert "10/W/16" in notice  # the purpose: the regulator's complaint handling
    # The note beside the button leads to it, before anything is sent.
    note = page.index('class="privacy-note"')
    assert note < page.index('id="send-button"')
    assert 'href="#privacy"' in page[note : page.index("</p>", note)]


def test_the_confirmation_page_keeps_the_privacy_notice() -> None:
    message = from_the_form("Mon transfert n'est jamais arrivé, merci de vérifier.", "")
    page = PAGES.confirmation(BY_CODE["fr"], message)
    assert 'id="privacy"' in page and texts("fr")["privacy_heading"] in html.unescape(page)
