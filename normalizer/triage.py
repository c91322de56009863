"""Triage: is an input a complaint, or a non-complaint of a known kind?

channel (signals it alone can read: the spam filter's verdict, list headers)
-> normalizer pipeline, step ``triage`` (**decide**) -> ``channels.handoff``
records a complaint, or keeps a non-complaint apart (``event.triage.<kind>``,
no acknowledgement, listed on the staff page "to sort").

When unsure, it is a complaint: a lost complaint is a breach of the
circular, a spam complaint costs a minute of staff time. So the rules only
name a kind when the whole text is made of that kind's words: a short
message ("Merci beaucoup !", "STOP", "وقف", "baraka", "chokran bzaf") and
nothing else. One word outside the kind's vocabulary ("merci mais je n'ai
rien reçu") keeps it a complaint. The vocabularies are hand-written, for the
languages the gateway supports (French, Arabic, Darija in both scripts,
Tamazight, English, Spanish).

The spam filter's verdict is I/O (spamd over TCP): the channel asks for it
and hands it in as a ``TriageSignal``; nothing here does I/O.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum

from normalizer.contract import Channel


class TriageKind(StrEnum):
    """What an input is. Every value but ``complaint`` is a non-complaint."""

    COMPLAINT = "complaint"
    SPAM = "spam"
    PHISHING = "phishing"
    MARKETING = "marketing"
    THANKS = "thanks"
    # ``opt_out`` on the wire: intake event kinds are ``[a-z_]`` (a v1 pattern).
    OPT_OUT = "opt_out"
    EMPTY = "empty"


NON_COMPLAINTS = tuple(kind for kind in TriageKind if kind is not TriageKind.COMPLAINT)


@dataclass(frozen=True)
class TriageSignal:
    """A channel's evidence for a kind: the spam filter's verdict, a list header."""

    kind: TriageKind
    method: str  # "spamd", "headers"
    reason: str
    score: float | None = None


@dataclass(frozen=True)
class TriageVerdict:
    kind: TriageKind
    # "filter" (spamd), "headers", "rules", "default" (nothing said otherwise), "staff".
    method: str
    reasons: tuple[str, ...] = ()
    score: float | None = None

    @property
    def is_complaint(self) -> bool:
        return self.kind is TriageKind.COMPLAINT


COMPLAINT = TriageVerdict(TriageKind.COMPLAINT, "default")
# Where anyone can write without a customer's intent to complain. A call, a
# letter the mailroom scanned, a web form and a partner's API call are
# complaints by how they came (a person chose to file them).
TRIAGED_CHANNELS = frozenset({Channel.EMAIL, Channel.SMS, Channel.WHATSAPP})

# A message is "short" up to these many words and characters; longer, it says more
# than a courtesy, and a person reads it as a complaint.
SHORT_WORDS = 8
SHORT_CHARS = 160
# Signals decide in this order: phishing is the more dangerous verdict.
_SIGNAL_ORDER = (TriageKind.PHISHING, TriageKind.SPAM, TriageKind.MARKETING)

# Arabic diacritics and tatweel say nothing about the kind; alef and yeh
# variants are written interchangeably.
_ARABIC_MARKS = re.compile(r"[\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06ed\u0640]")
_ARABIC_LETTERS = str.maketrans({"أ": "ا", "إ": "ا", "آ": "ا", "ى": "ي"})
# Anything that is not a letter or digit (Latin, Arabic, Tifinagh) separates words;
# digits stay: Darija in Latin script writes sounds with them (3, 7, 9).
_SEPARATORS = re.compile(r"[^\w\u2d30-\u2d7f]+|_")
# "merciiii", "stoppp", "شكراااا": a letter held down.
_HELD_LETTER = re.compile(r"(\D)\1{2,}")


def words_of(text: str) -> list[str]:
    """Lower-case words without accents, Arabic marks or held letters."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(char for char in decomposed if not unicodedata.combining(char))
    plain = unicodedata.normalize("NFC", plain)  # Arabic letters recompose
    plain = _ARABIC_MARKS.sub("", plain).translate(_ARABIC_LETTERS)
    return [_HELD_LETTER.sub(r"\1", word) for word in _SEPARATORS.split(plain) if word]


def _words(text: str) -> frozenset[str]:
    """A vocabulary, its words written as ``words_of`` writes the messages' words."""
    return frozenset(words_of(text))


# Words that may stand beside any kind's words without adding meaning:
# greetings, "very much", "please", "ok", reply prefixes.
_FILLER = _words(
    """
    bonjour bonsoir salut cher chere madame monsieur mr mme beaucoup bcp bien tres trop
    infiniment mille fois bonne journee soiree cordialement vous votre pour tout toute
    a la le les de des et svp stp ok okay oui d accord re tr fw fwd
    hello hi hey dear good day very much so lot a lot all please kind regards you
    hola buenos buenas dias tardes muy muchas muchos saludos por favor usted
    salam slm slt salamo alaykom alikom 3likom aleikoum wa wakha ok mzyan bzaf bezzaf bzzaf
    sahbi khoya khti si lalla
    سلام السلام عليكم عليك و بزاف كثيرا جزيلا جدا مرحبا صباح مساء الخير النور اخي اختي سيدي
    azul ⴰⵣⵓⵍ
    """
)
_GREETINGS = _words(
    """
    bonjour bonsoir salut allo alo hello hi hey hola buenos buenas dias
    salam slm slt salamo alaykom alikom 3likom aleikoum azul test
    سلام السلام عليكم الو مرحبا ⴰⵣⵓⵍ
    """
)


@dataclass(frozen=True)
class _Vocabulary:
    """A kind's words: ``core`` ones name it; ``also`` may stand beside them."""

    kind: TriageKind
    core: frozenset[str]
    also: frozenset[str]
    # Core words that name the kind only beside another word ("الله" alone is an
    # exclamation, not thanks).
    weak: frozenset[str] = frozenset()

    def fits(self, words: list[str]) -> tuple[str, ...] | None:
        """The core words found, when every word is the kind's or filler; else None."""
        if any(word not in self.core and word not in self.also for word in words):
            return None
        if all(word in self.weak for word in words):
            return None
        found = tuple(dict.fromkeys(word for word in words if word in self.core))
        return found or None


_THANKS = _Vocabulary(
    TriageKind.THANKS,
    core=_words(
        """
        merci mercii mrc mrci remercie remercions remerciements remerciement
        thanks thank thx ty thankyou cheers grateful
        gracias agradezco agradecido agradecida
        choukran chokran chukran shukran shokran choukrane chkran
        barak barek ybarek ybark llah lah allah fik fikom fikoum fikum
        tanmirt tanemmirt tannemirt ⵜⴰⵏⵎⵎⵉⵔⵜ ⵜⴰⵏⵎⵉⵔⵜ
        شكرا شكر مشكور مشكورين مشكورة بارك يبارك الله اللہ فيك فيكم جزاك جزاكم خيرا تبارك
        """
    ),
    # "baraka" alone says "enough" (an opt-out); beside "allah"/"fik" it blesses.
    also=_FILLER | _words("baraka baraka2 lhamdulillah hamdoulah الحمد لله بركة"),
    weak=_words("allah llah lah الله اللہ"),
)
_OPT_OUT = _Vocabulary(
    TriageKind.OPT_OUT,
    core=_words(
        """
        stop stopall unsubscribe unsub optout
        arret arreter arretez desabonner desabonnement desinscrire desinscription
        baja
        baraka barka 7bes hbes wa9ef w9ef
        وقف اوقف توقف توقفوا حبس بركة بركا باراكا كفى
        """
    ),
    # "STOP merci": a courtesy beside the opt-out (not the blessings: "baraka allah fik").
    also=(_FILLER - _words("tout toute pour"))  # "arrêtez tout": maybe a payment
    | _words(
        """
        merci mrc thanks thank thx gracias choukran chokran shukran شكرا
        """
    )
    | _words(
        """
        sms message messages msg pub publicite me moi m nous ici
        opt out all texts mensajes
        رسائل الرسائل الاشتراك ديال
        """
    ),
)
# Thanks first: "baraka" beside a blessing is thanks, alone it is an opt-out.
_VOCABULARIES = (_THANKS, _OPT_OUT)


def classify_text(text: str) -> TriageVerdict:
    """The short-message kinds (empty, opt-out, thanks) of a text, else ``complaint``."""
    if len(text) > SHORT_CHARS * 4:
        return COMPLAINT
    words = words_of(text)
    if all(word in _GREETINGS for word in words):
        reason = "no words" if not words else "greetings only: " + " ".join(words)
        return TriageVerdict(TriageKind.EMPTY, "rules", (reason,))
    if len(words) > SHORT_WORDS or len(text.strip()) > SHORT_CHARS:
        return COMPLAINT
    for vocabulary in _VOCABULARIES:
        found = vocabulary.fits(words)
        if found is not None:
            return TriageVerdict(vocabulary.kind, "rules", found)
    return COMPLAINT


def decide(
    text: str,
    *,
    signals: tuple[TriageSignal, ...] = (),
    has_attachments: bool = False,
    about_a_customer: str | None = None,
) -> TriageVerdict:
    """One input's kind: a channel's signal first, then the text rules, else complaint.

    An input with attachments is never "empty", "thanks" or "opt-out": a photo
    of a receipt with "merci" under it is someone asking for something.
    ``about_a_customer`` names what ties the input to a customer's matter (a
    regulator's forward, a follow-up of a reference, a forwarded message): then
    the filter's verdict is kept as a reason but does not decide, because a
    customer forwarding the phishing mail that robbed them is complaining.
    """
    found = [signal for kind in _SIGNAL_ORDER for signal in signals if signal.kind is kind]
    if found and about_a_customer is not None:
        reasons = tuple(f"{about_a_customer}; {signal.reason}" for signal in found)
        return TriageVerdict(TriageKind.COMPLAINT, "default", reasons)
    if found:
        first = found[0]
        return TriageVerdict(
            first.kind,
            "filter" if first.method == "spamd" else first.method,
            tuple(signal.reason for signal in found if signal.kind is first.kind),
            first.score,
        )
    if has_attachments:
        return COMPLAINT
    return classify_text(text)
