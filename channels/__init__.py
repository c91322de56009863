"""Channel adapters: one module per way a complaint can reach Cash Plus.

``CHANNELS`` is the table the gateway reads to mount HTTP routes and start
workers; a new channel is one module and one line here.
"""

from __future__ import annotations

from channels import acks, api, imap, letters, smtp, twilio, webform
from channels.base import ChannelAdapter
from gateway.staff import adapter as staff

CHANNELS: tuple[ChannelAdapter, ...] = (
    api.ADAPTER,
    smtp.ADAPTER,
    imap.ADAPTER,
    webform.ADAPTER,
    letters.ADAPTER,
    staff.ADAPTER,
    twilio.ADAPTER,
    acks.ADAPTER,
)
