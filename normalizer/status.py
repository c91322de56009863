"""The status contract: what case handling tells the gateway about a complaint.

case management --``ma.cashplus.complaint.status.v1`` on the ``complaints``
exchange, routing key ``status.<status>``--> queue ``complaints.status`` ->
the case worker; or the same report as JSON to
``POST /v1/complaints/{reference}/status``.

Here the gateway is the consumer, so the models follow the open-v1 rule
from the consumer's side: properties they do not list are ignored (a later
1.x may add some) and ``schema_version`` is any ``1.x``; what they do list
is checked strictly. ``status`` and ``reason`` are closed sets: a new value
is a new major. ``schemas/complaint-status.v1.json`` is generated from
``ComplaintStatusEvent`` (``intake schema --write``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

# The contract's own patterns (``normalizer.contract``, which builds this schema
# among its documents, so it cannot be imported here; a unit test keeps them equal).
REFERENCE_PATTERN = r"^CP-[2-9A-HJKMNP-Z]{4}-[2-9A-HJKMNP-Z]{4}$"
SCHEMA_VERSION_PATTERN = r"^1\.(0|[1-9][0-9]*)$"

STATUS_EVENT_TYPE: Literal["ma.cashplus.complaint.status.v1"] = "ma.cashplus.complaint.status.v1"
STATUS_DATA_SCHEMA: Literal["urn:cashplus:schema:complaint-status:1"] = (
    "urn:cashplus:schema:complaint-status:1"
)
StatusValue = Literal["in_progress", "answered", "closed", "extended"]
ExtensionReason = Literal["investigation", "third_party", "documents"]


def _open(schema: dict[str, Any]) -> None:
    schema["additionalProperties"] = True


class _Open(BaseModel):
    # Additions of a later minor are ignored, never refused.
    model_config = ConfigDict(extra="ignore", frozen=True, json_schema_extra=_open)


class StatusReportIn(_Open):
    """One status report: what became of the complaint, and when."""

    status: StatusValue = Field(
        description=(
            "in_progress: being handled; extended: the answer takes longer (the customer is "
            "told, in their language, by their channel); answered: the answer went out; "
            "closed: nothing more will be done"
        )
    )
    at: AwareDatetime = Field(
        description="When it happened (ISO 8601 with a zone); not in the future, not before "
        "received_at"
    )
    note: str | None = Field(default=None, max_length=2000, description="For staff; never sent")
    answer_due_at: AwareDatetime | None = Field(
        default=None,
        description="extended only (required there): the new answer deadline, later than the "
        "current one",
    )
    reason: ExtensionReason | None = Field(
        default=None,
        description="extended only: why (worded for the customer by the notice); default "
        "investigation",
    )

    @model_validator(mode="after")
    def _extension_fields(self) -> StatusReportIn:
        if self.status != "extended" and (self.answer_due_at or self.reason):
            raise ValueError("answer_due_at and reason belong to an `extended` report only")
        return self


class StatusData(StatusReportIn):
    schema_version: str = Field(default="1.0", pattern=SCHEMA_VERSION_PATTERN)
    reference: str = Field(pattern=REFERENCE_PATTERN, description="The complaint's reference")


class ComplaintStatusEvent(_Open):
    """CloudEvents 1.0 envelope of a status report, sent by case handling."""

    specversion: Literal["1.0"]
    id: str = Field(
        min_length=1, max_length=255, description="Unique per report; repeats are dropped"
    )
    source: str = Field(min_length=1, max_length=255, description="The sending system")
    type: Literal["ma.cashplus.complaint.status.v1"]
    subject: str | None = Field(default=None, pattern=REFERENCE_PATTERN)
    time: AwareDatetime | None = None
    datacontenttype: Literal["application/json"] | None = None
    dataschema: str | None = None
    data: StatusData

    @model_validator(mode="after")
    def _subject_is_reference(self) -> ComplaintStatusEvent:
        if self.subject is not None and self.subject != self.data.reference:
            raise ValueError("subject and data.reference name different complaints")
        return self


def status_schema() -> dict[str, Any]:
    """``schemas/complaint-status.v1.json``."""
    schema = ComplaintStatusEvent.model_json_schema(mode="validation")
    schema["$id"] = "urn:cashplus:schema:complaint-status:1"
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema
