"""The message contract: one ``ComplaintMessage`` per complaint.

This is the only thing downstream systems see. The router publishes it inside
a CloudEvents 1.0 envelope (``ComplaintEvent``); the JSON Schemas in
``schemas/`` are generated from these models (``intake schema --write``) and a
test fails when the committed files drift from the code.

Versioning: ``schema_version`` is ``MAJOR.MINOR``. Adding an optional field
bumps MINOR; removing or changing the meaning of a field bumps MAJOR and the
routing-key and schema file names with it (README, "Compatibility").

The models are the producer's side and stay strict (``extra="forbid"``, the
versions this code reads listed): a typo in the code that builds a message
fails here. The schemas are the consumers' side and are open within the
major: every object allows properties it does not list, and
``schema_version`` is any ``1.x``, so a consumer validating with an older
v1 file accepts what a newer minor publishes
(``tests/integration/test_schema_history.py`` checks it against every
version of the files in git history).
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    WithJsonSchema,
    WrapValidator,
)

SCHEMA_VERSION: Literal["1.5"] = "1.5"
# What the schemas promise: any minor of major 1 (1.0, 1.1, ..., 1.10, ...).
SCHEMA_VERSION_PATTERN = r"^1\.(0|[1-9][0-9]*)$"
# Context key of ``read_as_consumer``: the read of a message another process published.
_AS_CONSUMER = "as_consumer"


def _later_minor(value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo) -> Any:
    """A consumer's read also takes a minor this code does not know yet (any ``1.x``)."""
    try:
        return handler(value)
    except ValidationError:
        consumer = bool(info.context and info.context.get(_AS_CONSUMER))
        if consumer and isinstance(value, str) and re.fullmatch(SCHEMA_VERSION_PATTERN, value):
            return value
        raise


# Versions a reader of this code still accepts (messages stored before an upgrade);
# the schema files say the pattern instead, so that older files accept newer minors.
SchemaVersion = Annotated[
    Literal["1.0", "1.1", "1.2", "1.3", "1.4", "1.5"],
    WrapValidator(_later_minor),
    WithJsonSchema({"type": "string", "pattern": SCHEMA_VERSION_PATTERN}),
]
EVENT_TYPE: Literal["ma.cashplus.complaint.received.v1"] = "ma.cashplus.complaint.received.v1"
DATA_SCHEMA: Literal["urn:cashplus:schema:complaint:1"] = "urn:cashplus:schema:complaint:1"
AMENDED_EVENT_TYPE: Literal["ma.cashplus.complaint.amended.v1"] = "ma.cashplus.complaint.amended.v1"

REFERENCE_PATTERN = r"^CP-[2-9A-HJKMNP-Z]{4}-[2-9A-HJKMNP-Z]{4}$"
E164_PATTERN = r"^\+[1-9][0-9]{6,14}$"
# A pseudonymous customer key (``normalizer.customer``): 160 bits of an HMAC, base32.
CUSTOMER_KEY_PREFIX = "cus_"
CUSTOMER_KEY_PATTERN = r"^cus_[a-z2-7]{32}$"
SHA256_PATTERN = r"^[0-9a-f]{64}$"
# BCP 47 subset we emit: language (2-3 letters), optional script, optional region.
LANGUAGE_TAG_PATTERN = r"^(und|[a-z]{2,3}(-[A-Z][a-z]{3})?(-[A-Z]{2})?)$"

Reference = Annotated[str, StringConstraints(pattern=REFERENCE_PATTERN)]
LanguageTag = Annotated[str, StringConstraints(pattern=LANGUAGE_TAG_PATTERN)]
Sha256 = Annotated[str, StringConstraints(pattern=SHA256_PATTERN)]
CustomerKey = Annotated[str, StringConstraints(pattern=CUSTOMER_KEY_PATTERN)]

# Tags with a meaning agreed with downstream teams; any other tag langdetect
# knows (de, tr, ...) may also appear.
KNOWN_LANGUAGES: dict[str, str] = {
    "fr": "French",
    "ar": "Modern Standard Arabic",
    "ary-Arab": "Moroccan Darija, Arabic script",
    "ary-Latn": "Moroccan Darija, Latin script (Arabizi)",
    "zgh-Tfng": "Standard Moroccan Tamazight, Tifinagh",
    "ber-Latn": "Tamazight, Latin script",
    "en": "English",
    "es": "Spanish",
    "und": "Undetermined",
}


class Channel(StrEnum):
    """How the complaint reached Cash Plus."""

    EMAIL = "email"
    PHONE = "phone"
    SMS = "sms"
    WHATSAPP = "whatsapp"
    LETTER = "letter"
    WEBFORM = "webform"
    API = "api"


class Origin(StrEnum):
    """Who sent it: the customer directly, or forwarded by the regulator or the mediator."""

    CUSTOMER = "customer"
    BANK_AL_MAGHRIB = "bank_al_maghrib"
    CMMB = "cmmb"


def _open_to_additions(schema: dict[str, Any]) -> None:
    """The schema of every model: properties it does not list are allowed (a later minor's)."""
    schema["additionalProperties"] = True


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=_open_to_additions)


class SecondaryLanguage(_Model):
    tag: LanguageTag
    confidence: float = Field(ge=0, le=1)


class Language(_Model):
    """Language of the complaint text, for routing to an agent who reads it."""

    tag: LanguageTag = Field(description="BCP 47 tag; see KNOWN_LANGUAGES in the README")
    confidence: float = Field(ge=0, le=1)
    method: str = Field(
        description="What decided the tag: declared, ivr, script, lexicon, langdetect, empty, ..."
    )
    secondary: list[SecondaryLanguage] = Field(
        default_factory=list, description="Other languages present in mixed text"
    )


class Customer(_Model):
    name: str | None = None
    email: str | None = None
    phone: Annotated[str, StringConstraints(pattern=E164_PATTERN)] | None = Field(
        default=None, description="E.164, e.g. +212520020915"
    )
    postal_address: str | None = None
    # What the customer asked for (web form); absent when the channel cannot say.
    preferred_language: LanguageTag | None = Field(
        default=None, description="Language the customer wants the answer in (BCP 47)"
    )
    preferred_contact: Literal["email", "phone", "sms", "whatsapp", "letter"] | None = Field(
        default=None, description="How the customer wants to be contacted"
    )
    key: CustomerKey | None = Field(
        default=None,
        description=(
            "Pseudonymous key of the customer (1.5): the same on their complaints by any "
            "channel that gave the same phone or e-mail; names no one; null without a "
            "phone or e-mail"
        ),
    )
    related: list[Reference] = Field(
        default_factory=list,
        description=(
            "References of this customer's earlier complaints of the last 12 months, by "
            "any shared phone or e-mail, oldest first (1.5)"
        ),
    )


class Attachment(_Model):
    name: str | None = Field(description="File name as sent, sanitised")
    content_type: str = Field(description="Type sniffed from the bytes (python-magic)")
    declared_type: str | None = Field(default=None, description="Type the sender claimed")
    size: int = Field(ge=0)
    sha256: Sha256
    stored_at: str = Field(description="Blob store location of the bytes")
    ocr_text: str | None = None
    ocr_confidence: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Lowest page confidence of the OCR text (0-1; 1 for a PDF's own text layer)",
    )


class Evidence(_Model):
    """Where the raw input is kept, and the identifiers the source channel gave it."""

    stored_at: str = Field(description="Blob store location of the raw input")
    sha256: Sha256
    size: int = Field(ge=0)
    content_type: str
    message_id: str | None = None
    imap_uidvalidity: int | None = None
    imap_uid: int | None = None
    call_sid: str | None = None
    recording_sid: str | None = None
    message_sid: str | None = None
    upload_id: str | None = None
    idempotency_key: str | None = None
    api_client: str | None = None
    recording_url: str | None = Field(
        default=None,
        description="Phone: Twilio's URL of the call recording (needs the account's key)",
    )
    missing_media: list[str] = Field(
        default_factory=list,
        description=(
            "URLs of media the channel announced (a call recording, MMS or WhatsApp photos) "
            "that the gateway did not hold when this was published; an amendment follows "
            "if they arrive later"
        ),
    )


class ProductDetection(_Model):
    """How ``product`` was decided (contract 1.4)."""

    method: str = Field(
        description="declared: the customer or the partner chose it (web form, API); rules: "
        "read from the text by the product rules"
    )
    confidence: float = Field(ge=0, le=1)
    matched: list[str] = Field(
        default_factory=list, description="rules: the words of the text that decided it"
    )


class Triage(_Model):
    """What the triage decided an input is (contract 1.5)."""

    kind: str = Field(
        description="complaint, or a non-complaint: spam, phishing, marketing, thanks, "
        "opt_out, empty (an open set: tolerate a kind you do not know)"
    )
    method: str = Field(
        default="default",
        description="filter (SpamAssassin), headers (mailing-list headers), rules (the "
        "short-message rules), default (nothing said otherwise: a complaint), staff "
        "(a person decided)",
    )
    reasons: list[str] = Field(
        default_factory=list, description="What decided: filter rules, matched words"
    )
    score: float | None = Field(default=None, description="The spam filter's score, if any")
    suggested: str | None = Field(
        default=None, description="staff: the kind the triage had suggested before a person decided"
    )
    decided_by: str | None = Field(default=None, description="staff: who decided (a staff login)")
    decided_at: AwareDatetime | None = Field(default=None, description="staff: when")


class ComplaintMessage(_Model):
    """One complaint, as published to downstream systems."""

    schema_version: SchemaVersion = Field(
        default=SCHEMA_VERSION,
        description=(
            "1.0: first version. 1.1: adds customer.preferred_language, "
            "customer.preferred_contact, evidence.recording_url, evidence.missing_media. "
            "1.2: adds needs_review and attachments[].ocr_confidence. "
            "1.3: adds details (e-mail authentication). "
            "1.4: adds product_detection. "
            "1.5: adds customer.key and customer.related, triage"
        ),
    )
    id: str = Field(description="Stable identifier (UUID); the same on every redelivery")
    reference: Reference = Field(description="Short reference a customer can read on the phone")
    channel: Channel
    origin: Origin = Origin.CUSTOMER
    received_at: AwareDatetime = Field(description="When Cash Plus received it: the legal clock")
    ack_due_at: AwareDatetime = Field(description="Acknowledge by: end of local day +10 days")
    answer_due_at: AwareDatetime = Field(description="Answer by: end of local day +40 days")
    processed_at: AwareDatetime = Field(description="When the gateway turned it into this message")
    language: Language
    customer: Customer
    subject: str | None = None
    body: str
    product: str | None = Field(
        default=None,
        description=(
            "Product or service concerned: as declared (web form codes, the API's text), or "
            "a web form code read from the text (see product_detection); null when unsure"
        ),
    )
    product_detection: ProductDetection | None = Field(
        default=None, description="How product was decided; null when product is null (1.4)"
    )
    transaction_reference: str | None = None
    attachments: list[Attachment] = Field(default_factory=list)
    needs_review: bool = Field(
        default=False,
        description=(
            "A person should read the source: the text was machine-read below the review "
            "confidence (INTAKE_OCR_REVIEW_CONFIDENCE), or could not be read at all"
        ),
    )
    follow_up_of: Reference | None = Field(
        default=None, description="Reference of an earlier complaint this one continues"
    )
    evidence: Evidence
    triage: Triage | None = Field(
        default=None,
        description="How the triage kept it as a complaint, or who turned a non-complaint "
        "into one (1.5); absent before 1.5",
    )
    details: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "Channel facts. E-mail: authentication = {result: pass|fail|none, "
            "method: dkim|authentication-results|null, domain: the From-aligned domain "
            "or null} (an acknowledgement e-mail only on pass); claimed_origin = the "
            "origin the From header claims when the mail was not authenticated"
        ),
    )


class ComplaintEvent(_Model):
    """CloudEvents 1.0 structured-mode envelope around a ``ComplaintMessage``."""

    specversion: Literal["1.0"] = "1.0"
    id: str = Field(description="Event id: the complaint id, so redeliveries can be dropped")
    source: str
    type: Literal["ma.cashplus.complaint.received.v1"] = EVENT_TYPE
    subject: Reference = Field(description="The complaint reference")
    time: AwareDatetime = Field(description="received_at of the complaint")
    datacontenttype: Literal["application/json"] = "application/json"
    dataschema: Literal["urn:cashplus:schema:complaint:1"] = DATA_SCHEMA
    data: ComplaintMessage

    @classmethod
    def wrap(cls, message: ComplaintMessage, source: str) -> ComplaintEvent:
        return cls(
            id=message.id,
            source=source,
            subject=message.reference,
            time=message.received_at,
            data=message,
        )


Read = TypeVar("Read", bound=BaseModel)


def read_as_consumer(model: type[Read], body: bytes | str) -> Read:
    """Read a message as the README asks every consumer to: properties this code does
    not know are dropped and ``schema_version`` may be any ``1.x``.

    For our own consumers (the acknowledgement worker), so that a worker still on
    1.3 keeps working on what a 1.4 gateway publishes during a rolling upgrade.
    The models stay strict everywhere else: they are the producer's check.
    """
    return model.model_validate_json(body, extra="ignore", context={_AS_CONSUMER: True})


class ComplaintAmendedEvent(_Model):
    """CloudEvents 1.0 envelope: a complaint already published, as it is now.

    Sent when something arrives after the complaint went out: a call's
    transcript (``body``, ``language.secondary``), its recording or photos
    (``attachments``, ``evidence.missing_media``). ``data`` is the whole
    complaint again with the same ``id``; consumers replace what they hold for
    that id. Published with the complaint's own routing key, so it follows the
    complaint to every queue; ``type`` tells the two apart.
    """

    specversion: Literal["1.0"] = "1.0"
    id: str = Field(description="Event id, one per amendment (not the complaint id)")
    source: str
    type: Literal["ma.cashplus.complaint.amended.v1"] = AMENDED_EVENT_TYPE
    subject: Reference = Field(description="The complaint reference")
    time: AwareDatetime = Field(description="When the complaint was amended")
    datacontenttype: Literal["application/json"] = "application/json"
    dataschema: Literal["urn:cashplus:schema:complaint:1"] = DATA_SCHEMA
    amendedfields: str = Field(
        pattern=r"^[a-z_]+(,[a-z_]+)*$",
        description="CloudEvents extension: top-level fields of data that changed, comma-separated",
    )
    data: ComplaintMessage

    @classmethod
    def wrap(
        cls, message: ComplaintMessage, source: str, *, event_id: str, changed: list[str]
    ) -> ComplaintAmendedEvent:
        return cls(
            id=event_id,
            source=source,
            subject=message.reference,
            time=message.processed_at,
            amendedfields=",".join(changed),
            data=message,
        )


class IntakeEvent(_Model):
    """Something that reached a channel and is worth knowing but is not a complaint.

    Kinds so far: ``email.autoreply`` (an out-of-office, a bounce, bulk mail;
    never acknowledged), ``call.missed``, ``triage.<kind>`` (an input the
    triage found not to be a complaint: ``triage.spam``, ``triage.opt_out``...;
    never acknowledged, listed for staff to sort). Published with routing key
    ``event.<kind>``.
    """

    schema_version: SchemaVersion = Field(
        default=SCHEMA_VERSION,
        description=(
            "1.0: first version. 1.1: adds customer.preferred_language, "
            "customer.preferred_contact, evidence.recording_url, evidence.missing_media. "
            "1.2: adds needs_review and attachments[].ocr_confidence. "
            "1.3: adds details (e-mail authentication). "
            "1.5: adds triage (triage.<kind> events)"
        ),
    )
    id: str
    kind: str = Field(pattern=r"^[a-z]+(\.[a-z_]+)+$")
    channel: Channel
    received_at: AwareDatetime
    details: dict[str, Any] = Field(default_factory=dict)
    triage: Triage | None = Field(
        default=None, description="triage.<kind> events: what the triage decided, why (1.5)"
    )
    evidence: Evidence


class IntakeEventEnvelope(_Model):
    """CloudEvents 1.0 envelope around an ``IntakeEvent``; ``type`` names the kind."""

    specversion: Literal["1.0"] = "1.0"
    id: str
    source: str
    type: str = Field(description="ma.cashplus.intake.<kind>.v1")
    time: AwareDatetime
    datacontenttype: Literal["application/json"] = "application/json"
    dataschema: Literal["urn:cashplus:schema:intake-event:1"] = "urn:cashplus:schema:intake-event:1"
    data: IntakeEvent

    @classmethod
    def wrap(cls, event: IntakeEvent, source: str) -> IntakeEventEnvelope:
        return cls(
            id=event.id,
            source=source,
            type=f"ma.cashplus.intake.{event.kind}.v1",
            time=event.received_at,
            data=event,
        )


def schema_documents() -> dict[str, dict[str, Any]]:
    """The JSON Schema documents committed under ``schemas/``, by file name."""
    message = ComplaintMessage.model_json_schema(mode="serialization")
    message["$id"] = DATA_SCHEMA
    message["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    event = ComplaintEvent.model_json_schema(mode="serialization")
    event["$id"] = "urn:cashplus:schema:complaint-event:1"
    event["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    intake_event = IntakeEventEnvelope.model_json_schema(mode="serialization")
    intake_event["$id"] = "urn:cashplus:schema:intake-event:1"
    intake_event["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    amended = ComplaintAmendedEvent.model_json_schema(mode="serialization")
    amended["$id"] = "urn:cashplus:schema:complaint-amended:1"
    amended["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    from normalizer.status import status_schema  # imported here: a module apart, for consumers

    return {
        "complaint-status.v1.json": status_schema(),
        "complaint.v1.json": message,
        "complaint-event.v1.json": event,
        "complaint-amended.v1.json": amended,
        "intake-event.v1.json": intake_event,
    }


def utc_iso(moment: datetime) -> str:
    """ISO 8601 in UTC with a ``Z``, the form used in every message."""
    from datetime import UTC

    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


# Routing keys: part of the contract (README, "The message contract").
def routing_key_for(message: ComplaintMessage) -> str:
    """``complaint.<channel>.<language tag>``: what consumers bind to."""
    return f"complaint.{message.channel.value}.{message.language.tag}"


def event_routing_key(kind: str) -> str:
    """``event.<kind>``: an event of the complaints' life (``event.ack.sent``)."""
    return f"event.{kind}"
