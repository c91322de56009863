"""Automatic mail is recognised; complaints with similar words are not."""

from __future__ import annotations

import pytest

from normalizer.email.autoreply import detect_auto_reply

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({"Auto-Submitted": "auto-replied"}, "Auto-Submitted: auto-replied"),
        ({"Precedence": "bulk"}, "Precedence: bulk"),
        ({"Precedence": "junk"}, "Precedence: junk"),
        ({"X-Autoreply": "yes"}, "X-Autoreply header"),
        ({"X-Autorespond": "1"}, "X-Autorespond header"),
        ({"Return-Path": "<>"}, "null return path <>"),
        (
            {"Content-Type": 'multipart/report; report-type="delivery-status"; boundary=x'},
            "multipart/report (delivery-status)",
        ),
        ({"From": "MAILER-DAEMON@mx.example.ma"}, "sender is mailer-daemon"),
        ({"Subject": "Réponse automatique : Votre réclamation"}, "subject: Réponse automatique"),
        ({"Subject": "Automatic reply: hello"}, "subject: Automatic reply"),
        ({"Subject": "Absence"}, "subject: Absence"),
        ({"Subject": "Undeliverable: Accusé"}, "subject: Undeliverable"),
        ({"Subject": "Mail Delivery Failure"}, "subject: Mail Delivery Failure"),
        ({"Subject": "Respuesta automática: hola"}, "subject: Respuesta automática"),
        ({"Subject": "رد تلقائي: شكاية"}, "subject: رد تلقائي"),
    ],
)
def test_automatic_mail_is_classified(headers, reason):
    assert detect_auto_reply(headers) == reason


@pytest.mark.parametrize(
    "headers",
    [
        {"Auto-Submitted": "no"},
        {"Precedence": "normal"},
        {"Subject": "Absence de remboursement depuis 10 jours"},
        {"Subject": "Réclamation : transfert non reçu"},
        {"Return-Path": "<client@example.ma>"},
    ],
)
def test_human_mail_is_not_classified(headers):
    assert detect_auto_reply(headers) is None


def test_null_envelope_sender_wins_over_a_return_path_header():
    assert detect_auto_reply({"Return-Path": "<a@b.ma>"}, envelope_sender="") == (
        "null return path <>"
    )
