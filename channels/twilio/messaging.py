"""SMS and WhatsApp messages to the line: one complaint per message, photos attached.

Twilio posts each inbound message once per ``MessageSid`` (and again on a
retry): the dedup key is ``twilio:message:<MessageSid>``. Photos
(``MediaUrl0..N``) are downloaded by the phone worker, not in the webhook;
the complaint waits for them (``INTAKE_MESSAGE_MEDIA_WAIT`` at most) and is
published with what arrived. The reply, in the language the message is
written in, carries the reference.
"""

from __future__ import annotations

from channels.handoff import is_triaged
from channels.twilio.line import PhoneLine, keep_refused, record_held, reject
from channels.twilio.signature import FORM_TYPE, TwilioRequest
from gateway.store.media import NewMedia
from normalizer.contact import build_customer
from normalizer.contract import Channel, ComplaintMessage
from normalizer.draft import ComplaintDraft, RawInput

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


def receive_message(line: PhoneLine, request: TwilioRequest) -> str:
    """Record the message as a complaint; returns the reply to send back."""
    recorded = record_message(line, request)
    if recorded is None:
        return line.table.reply_texts("und").sms_empty
    message, _created = recorded
    if is_triaged(message):  # "STOP", "merci": no "complaint recorded" reply
        return ""
    texts = line.table.reply_texts(message.language.tag)
    return texts.sms_reply.format(reference=message.reference)


def record_message(line: PhoneLine, request: TwilioRequest) -> tuple[ComplaintMessage, bool] | None:
    """The message's complaint and whether it is new; None for an empty message (quarantined).

    A retried webhook (same ``MessageSid``) gives the complaint recorded the first time.
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
    key = f"twilio:message:{message_sid}"
    media = announced_media(request, key, message_sid)
    body = request.get("Body")
    if not body and not media:
        keep_refused(
            line, channel.value, request, EMPTY, EMPTY_REASON, ids={"message_sid": message_sid}
        )
        return None
    # Rows for the downloads first: if we die before the complaint, a retry finds them.
    line.media.add(media)
    raw = RawInput(
        channel=channel,
        data=request.body,
        content_type=FORM_TYPE,
        received_at=request.received_at,
        dedup_key=key,
        source_ids={"message_sid": message_sid, "missing_media": [item.url for item in media]},
    )
    draft = ComplaintDraft(
        channel=channel,
        received_at=request.received_at,
        body=body,
        customer=build_customer(
            name=request.get("ProfileName") or None, phone=sender, strict=False
        ),
        announced_media=len(media),
    )
    hold = line.settings.message_media_wait if media else None
    return record_held(line, raw, draft, hold)
