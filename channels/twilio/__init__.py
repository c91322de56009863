"""The phone channel: Twilio webhooks for the 0520020915 line (calls, SMS, WhatsApp).

- ``routes``: the webhooks and the transcript API, thin, signature first;
- ``voice`` / ``messaging`` / ``transcripts``: what each webhook changes (a message
  is captured at its webhook and made a complaint by the normalizer runners);
- ``worker``: downloads recordings and photos, publishes missed calls;
- ``call_backs``: calls left without an answer, noted for staff to return;
- ``cli``: ``intake twilio-worker``, ``intake twilio-prompts``;
- ``audio``: recorded prompts (``prompts/<language>/<name>.mp3``) played instead of the voice;
- ``replay``: quarantined webhooks and transcripts, through their handler again;
- ``texts`` + ``ivr.json``: every sentence the line says or writes, per language;
- ``twiml``: the answers, built with twilio's TwiML builder.

State lives in ``gateway.store.calls`` / ``media`` / ``revisions``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from channels.twilio.cli import twilio_prompts, twilio_worker
from channels.twilio.replay import replay_twilio
from channels.twilio.routes import build_router
from channels.twilio.worker import run_worker, worker_enabled
from gateway.lib.component import Component
from gateway.lib.services import Services

if TYPE_CHECKING:
    from gateway.store.captures import Captured, Finished


def _normalize_messages(
    services: Services, batch: Sequence[Captured]
) -> list[Finished | Exception]:
    from channels.twilio.messaging import normalize_message_captures

    return normalize_message_captures(services, batch)


ADAPTER = Component(
    name="twilio",
    routes=build_router,
    worker=run_worker,
    enabled=worker_enabled,
    commands=(twilio_worker, twilio_prompts),
    # Signed webhooks and transcripts refused for their content, run through
    # the same handler again (never a request Twilio did not sign).
    replay=replay_twilio,
    replays=("phone", "sms", "whatsapp"),
    # SMS and WhatsApp messages the webhook captured, made complaints by the runners.
    normalize=_normalize_messages,
    normalizes=("sms", "whatsapp"),
)
