"""SMS and WhatsApp messages to the line: one complaint per message, photos attached.

Twilio posts each inbound message once per ``MessageSid`` (and again on a
retry): the dedup key is ``twilio:message:<MessageSid>``. The webhook
captures the message (``receive_message``: the form body, its receipt time,
the reference and deadlines, one group commit) and answers; a normalizer
runner makes the complaint (``normalize_message_captures`` ->
``record_message``). Photos (``MediaUrl0..N``) are downloaded by the phone
worker, not in the webhook; the complaint waits for them
(``INTAKE_MESSAGE_MEDIA_WAIT`` at most) and is published with what arrived.

The reply, in the language the message is written in, carries the
reference: the language is told at the webhook (the language step on the
short text costs well under a millisecond), and so is whether to answer at
all (a bare "STOP" or "merci" gets no "complaint recorded" reply: the same
triage rules the runner applies, on the text alone).
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi.concurrency import run_in_threadpool

from channels.handoff import is_triaged
from channels.twilio import twiml
from channels.twilio.line import PhoneLine, keep_refused, record_held, refresh, reject
from channels.twilio.signature import FORM_TYPE, TwilioRequest, parse_form
from gateway.lib.capture_queue import CaptureQueue
from gateway.lib.services import Services
from gateway.store.captures import QUARANTINED, Capture, Captured, Finished
from gateway.store.media import NewMedia
from normalizer.contact import build_customer
from normalizer.contract import Channel, ComplaintMessage
from normalizer.draft import ComplaintDraft, RawInput
from normalizer.language import detect_text_language
from normalizer.reference import find_references
from normalizer.triage import decide

WHATSAPP_PREFIX = "whatsapp:"
# Twilio sends at most 10 media per message; anything above is not Twilio.
MAX_MEDIA = 10
EMPTY, EMPTY_REASON = "empty_message", "a message with neither text nor media"


def channel_of(sender: str) -> Channel:
    return Channel.WHATSAPP if sender.lower().startswith(WHATSAPP_PREFIX) else Channel.SMS


def announced_media(request: TwilioRequest, complaint_key: str, message_sid: str) -> list[NewMedia]:
    count = request.get("NumMedia", "0")
    total = min(int(count), MAX_MEDIA) if count.isdigit() else 0
    items = []
    for index in range(total):
        url = request.get(f"MediaUrl{index}")
        if url:
            items.append(
                NewMedia(
                    media_key=f"message:{message_sid}:{index}",
                    complaint_key=complaint_key,
                    position=index,
                    url=url,
                    name=f"{message_sid}-{index}",
                    declared_type=request.get(f"MediaContentType{index}") or None,
                )
            )
    return items


async def receive_message(line: PhoneLine, request: TwilioRequest, writer: CaptureQueue) -> str:
    """Capture the message; returns the reply to send back (its reference, its language).

    On the event loop but for the store: the checks and the reply's language
    are CPU only, the capture is the writer's batch commit (``writer``); the
    rare message refused or kept apart, and the photos' download rows, go to
    a worker thread.
    """
    checked = _usual(request) or await run_in_threadpool(_checked, line, request)
    if checked is None:
        return line.table.reply_texts("und").sms_empty
    channel, key, media = checked
    if media:
        await run_in_threadpool(
            line.media.add, media
        )  # the download rows first: a retry finds them
    captured = await writer.capture(
        Capture(
            channel=channel.value,
            data=request.body,
            content_type=FORM_TYPE,
            received_at=request.received_at,
            dedup_key=key,
            source_ids={"message_sid": key.rsplit(":", 1)[-1], "path": request.path},
        )
    )
    body = request.get("Body")
    if not _answered(body, bool(media)):  # "STOP", "merci": no "complaint recorded" reply
        return ""
    texts = line.table.reply_texts(detect_text_language(body).tag if body else "und")
    return texts.sms_reply.format(reference=captured.reference)


def _usual(request: TwilioRequest) -> tuple[Channel, str, list[NewMedia]] | None:
    """What ``_checked`` gives for a message it takes without writing anything; else None."""
    if not (request.get("MessageSid") or request.get("SmsSid")) or not request.get("From"):
        return None
    parts = _parts(request)
    return parts if request.get("Body") or parts[2] else None


def _answered(body: str, has_media: bool) -> bool:
    """Whether the message gets the "complaint recorded" reply: the triage's rules on its text."""
    quoted = find_references(body)
    verdict = decide(
        body,
        signals=(),
        has_attachments=has_media,
        about_a_customer=f"follow-up of {quoted[0]}" if quoted else None,
    )
    return verdict.is_complaint


def _checked(line: PhoneLine, request: TwilioRequest) -> tuple[Channel, str, list[NewMedia]] | None:
    """The message's channel, dedup key and announced photos; None for an empty message.

    A message without MessageSid or From is refused (``reject`` raises); an
    empty one is kept in quarantine.
    """
    message_sid = request.get("MessageSid") or request.get("SmsSid")
    sender = request.get("From")
    channel = channel_of(sender)
    if not message_sid or not sender:
        raise reject(
            line,
            channel.value,
            request,
            "missing_parameter",
            "message webhook without MessageSid or From",
            ids={},
        )
    _channel, key, media = _parts(request)
    if not request.get("Body") and not media:
        keep_refused(
            line, channel.value, request, EMPTY, EMPTY_REASON, ids={"message_sid": message_sid}
        )
        return None
    return channel, key, media


def _parts(request: TwilioRequest) -> tuple[Channel, str, list[NewMedia]]:
    """The message's channel, dedup key and announced photos (it has a MessageSid and a From)."""
    message_sid = str(request.get("MessageSid") or request.get("SmsSid"))
    key = f"twilio:message:{message_sid}"
    return channel_of(request.get("From")), key, announced_media(request, key, message_sid)


def record_message(
    line: PhoneLine, request: TwilioRequest, captured: Captured | None = None
) -> tuple[ComplaintMessage, bool] | None:
    """The message's complaint and whether it is new; None for an empty message (quarantined).

    ``captured``: the capture it comes from (a runner's), whose id, reference
    and receipt time the complaint takes. A retried webhook (same
    ``MessageSid``) gives the complaint recorded the first time.
    """
    checked = _checked(line, request)
    if checked is None:
        return None
    channel, key, media = checked
    line.media.add(media)
    raw = RawInput(
        channel=channel,
        data=request.body,
        content_type=FORM_TYPE,
        received_at=request.received_at,
        dedup_key=key,
        source_ids={
            "message_sid": key.rsplit(":", 1)[-1],
            "missing_media": [item.url for item in media],
        },
        durable=captured is not None,
    )
    draft = ComplaintDraft(
        channel=channel,
        received_at=request.received_at,
        body=request.get("Body"),
        customer=build_customer(
            name=request.get("ProfileName") or None, phone=request.get("From"), strict=False
        ),
        announced_media=len(media),
    )
    if captured is not None:
        draft.assigned_id, draft.assigned_reference = captured.id, captured.reference
    hold = line.settings.message_media_wait if media else None
    message, created = record_held(line, raw, draft, hold)
    if created and media:
        # The photos' downloads may have beaten the runner (they start at the webhook).
        revision = refresh(line, key)
        if revision is not None:
            message = revision.message
    return message, created


def normalize_message_captures(
    services: Services, batch: Sequence[Captured]
) -> list[Finished | Exception]:
    """The runner's step for SMS and WhatsApp: each captured webhook made a complaint."""
    line = PhoneLine.of(services)
    outcomes: list[Finished | Exception] = []
    for captured in batch:
        try:
            outcomes.append(_normalize_one(line, captured))
        except Exception as exc:  # this message's failure; the others go on
            outcomes.append(exc)
    return outcomes


def _normalize_one(line: PhoneLine, captured: Captured) -> Finished:
    data = line.services.store.captures.data_of(captured)
    params = parse_form(data)
    if params is None:  # signed by Twilio, so never: said plainly if it happens
        raise ValueError("the captured webhook is not UTF-8 form data")
    request = TwilioRequest(
        params=params,
        body=data,
        path=str(captured.source_ids.get("path") or twiml.MESSAGING),
        received_at=captured.received_at,
    )
    recorded = record_message(line, request, captured)
    if recorded is None:
        return Finished(captured.id, QUARANTINED)
    message, _created = recorded
    if is_triaged(message):
        return Finished(captured.id, "triaged")
    return Finished(captured.id, "complaint" if message.id == captured.id else "repeat", message.id)
