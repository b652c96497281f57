"""What Twilio posts to Beacon, read: incoming SMS and MMS, keywords, delivery statuses.

Pure functions and small units of work used by :mod:`bot.channels.sms`:

- :func:`parse_form` reads a webhook body (``application/x-www-form-urlencoded``)
  with :func:`urllib.parse.parse_qsl`;
- :func:`incoming_from` turns an incoming-message webhook into an
  :class:`~bot.conversation.Incoming`: the sender's number is the address,
  ``MessageSid`` the message id (unique: a redelivery is not processed twice),
  the country of the number's calling code a language prior (``phonenumbers``),
  and MMS media a reference a responder can open (never downloaded on receipt);
- :func:`keyword_of` recognises the carriers' keywords the way Twilio does
  (the whole body, any case); :func:`record_keyword` stores such a message
  and acts on it: STOP opts the person out (nothing more is sent), START opts
  them in again, HELP is answered with a short help text in their language;
- :func:`record_delivery` records a status callback on the message Beacon sent.

Privacy: the message text is encrypted in the database; the attachment
reference and the hints (calling code, region) are not, so they hold no
number, name or place finer than a country.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import phonenumbers
from sqlalchemy import select
from starlette.datastructures import MultiDict

from bot.conversation import Incoming
from bot.db import session_scope
from bot.db.models import Case, CaseEvent, Contact, Direction, Message, MessageStatus, utcnow
from bot.handoff import queue
from bot.handoff.relay import mark_unreachable
from bot.i18n.nlg import render
from bot.screening import ScreeningContext, detect_language

CHANNEL = "sms"
#: Twilio's message SIDs: ``SM`` (SMS) or ``MM`` (MMS) and 32 hex digits.
MESSAGE_SID = re.compile(r"^(SM|MM)[0-9a-f]{32}$")
#: The path of one MMS medium on Twilio's API (its URL without scheme and host).
MEDIA_PATH = re.compile(
    r"^/2010-04-01/Accounts/(AC[0-9a-f]{32})/Messages/(MM|SM)[0-9a-f]{32}/Media/ME[0-9a-f]{32}$"
)
#: Twilio sends at most 10 media with one MMS.
MAX_MEDIA = 10
#: Hosts a medium's URL may name (besides the configured API base).
TWILIO_HOSTS = frozenset({"api.twilio.com"})
#: The carriers' keywords as they are written into a help text.
KEYWORD_VALUES = {"stop": "STOP", "start": "START"}


class MalformedWebhook(ValueError):
    """The webhook body is not what Twilio sends; the message says why."""


class Keyword(str, enum.Enum):
    """A carriers' keyword (Twilio's ``OptOutType``)."""

    STOP = "STOP"
    START = "START"
    HELP = "HELP"


#: Twilio's default keywords (a whole message, any case).
KEYWORDS: dict[str, Keyword] = {
    **dict.fromkeys(
        ("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"),
        Keyword.STOP,
    ),
    **dict.fromkeys(("START", "YES", "UNSTOP"), Keyword.START),
    **dict.fromkeys(("HELP", "INFO"), Keyword.HELP),
}


def parse_form(body: bytes, content_type: str | None) -> MultiDict:
    """A webhook's form parameters.

    Raises:
        MalformedWebhook: not form-encoded, not UTF-8, or not ``key=value`` pairs.
    """
    if (content_type or "").split(";")[0].strip().lower() != "application/x-www-form-urlencoded":
        raise MalformedWebhook("body must be application/x-www-form-urlencoded")
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(
            text, keep_blank_values=True, strict_parsing=bool(text), max_num_fields=200
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedWebhook("body is not a valid form (key=value pairs, UTF-8)") from exc
    return MultiDict(pairs)


def required(form: Mapping[str, str], name: str) -> str:
    """A parameter that must be present and not empty.

    Raises:
        MalformedWebhook: it is missing or empty.
    """
    value = form.get(name)
    if not value:
        raise MalformedWebhook(f"'{name}' is required")
    return value


def hints(number: str) -> dict[str, str]:
    """The sender's country as language priors: ``{"calling_code": "66", "region": "TH"}``.

    Empty for a sender that is not a phone number in E.164 (a short code, a name).
    """
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return {}
    if not parsed.country_code:
        return {}
    region = phonenumbers.region_code_for_number(parsed) or (
        phonenumbers.region_code_for_country_code(parsed.country_code)
    )
    found = {"calling_code": str(parsed.country_code)}
    if region and region != phonenumbers.UNKNOWN_REGION:
        found["region"] = region
    return found


def media_kind(content_type: str) -> str:
    """The console's name for a medium of ``content_type`` (photo, audio, video, document)."""
    major = content_type.split("/")[0].lower()
    return {"image": "photo", "audio": "audio", "video": "video"}.get(major, "document")


def media_reference(form: Mapping[str, str], api_base: str) -> dict[str, Any] | None:
    """The MMS media of a webhook as a reference: kind, and each medium's API path and type.

    Raises:
        MalformedWebhook: ``NumMedia`` is not a number, or a medium's URL is not Twilio's.
    """
    raw = form.get("NumMedia") or "0"
    if not raw.isdigit() or int(raw) > MAX_MEDIA:
        raise MalformedWebhook(f"'NumMedia' must be a number from 0 to {MAX_MEDIA}")
    media = []
    hosts = TWILIO_HOSTS | {urlsplit(api_base).netloc}
    for index in range(int(raw)):
        url = urlsplit(required(form, f"MediaUrl{index}"))
        if url.netloc not in hosts or not MEDIA_PATH.match(url.path):
            raise MalformedWebhook(f"'MediaUrl{index}' is not a Twilio media URL")
        content_type = form.get(f"MediaContentType{index}") or "application/octet-stream"
        media.append({"path": url.path, "mime_type": content_type[:100]})
    if not media:
        return None
    return {"kind": media_kind(media[0]["mime_type"]), "media": media}


def incoming_from(form: Mapping[str, str], api_base: str) -> Incoming:
    """The incoming message a webhook describes.

    Raises:
        MalformedWebhook: without a valid ``MessageSid`` or a ``From``.
    """
    sid = required(form, "MessageSid")
    if not MESSAGE_SID.match(sid):
        raise MalformedWebhook("'MessageSid' is not a Twilio message SID")
    sender = required(form, "From")
    return Incoming(
        channel=CHANNEL,
        address=sender,
        text=form.get("Body") or "",
        external_id=sid,
        hints=hints(sender),
        attachment=media_reference(form, api_base),
    )


def keyword_of(body: str, opt_out_type: str | None) -> Keyword | None:
    """The keyword a message is, if any.

    Twilio's ``OptOutType`` (sent with Advanced Opt-Out, whose keywords may be
    localised) decides when present; otherwise the default keywords, matched
    like Twilio does: the whole message, any case, surrounding spaces ignored.
    """
    if opt_out_type:
        try:
            return Keyword(opt_out_type.strip().upper())
        except ValueError:
            return None
    return KEYWORDS.get(body.strip().upper())


def _contact(session: Any, address: str) -> Contact | None:
    found: Contact | None = session.execute(
        select(Contact).where(
            Contact.channel == CHANNEL,
            Contact.address_hash == queue.address_key(CHANNEL, address),
        )
    ).scalar_one_or_none()
    return found


def opted_out(address: str) -> bool:
    """Whether the person at ``address`` sent STOP (and not START since)."""
    with session_scope() as session:
        contact = _contact(session, address)
        return bool(contact and contact.opted_out)


def _event(session: Any, case: Case, action: str) -> None:
    session.add(
        CaseEvent(
            case_id=case.id,
            actor=CHANNEL,
            action=action,
            from_status=case.status,
            to_status=case.status,
            detail={"channel": CHANNEL},
        )
    )


def mark_opted_out(session: Any, contact: Contact, case: Case | None) -> None:
    """The person opted out: nothing is sent to them, and the console shows them unreachable."""
    now = utcnow()
    if not contact.opted_out and case is not None:
        _event(session, case, "opted_out")
    contact.opted_out = True
    if contact.unreachable_since is None:
        contact.unreachable_since = now


def opt_out_address(address: str) -> None:
    """Twilio refused to send to ``address`` because the person sent STOP (error 21610)."""
    with session_scope() as session:
        contact = _contact(session, address)
        if contact is None:
            return
        case = session.execute(
            select(Case).where(Case.contact_id == contact.id).order_by(Case.id.desc()).limit(1)
        ).scalar_one_or_none()
        mark_opted_out(session, contact, case)


@dataclass(frozen=True)
class KeywordResult:
    """A keyword message as stored: its case, and whether it had been received before."""

    message_id: int
    case_id: int
    duplicate: bool


def help_language(contact: Contact, incoming: Incoming) -> str:
    """The language of the help text: the conversation's, else the sender's country's."""
    if contact.chosen_language or contact.language:
        return str(contact.chosen_language or contact.language)
    prior = ScreeningContext(calling_code=incoming.hints.get("calling_code"))
    return detect_language("", prior)[0]


def record_keyword(incoming: Incoming, keyword: Keyword) -> KeywordResult:
    """Stores a keyword message, acts on it and stores the help text to send, in one unit of work.

    The message is marked processed at once: the assistant never reads a keyword.
    """
    with session_scope() as session:
        found = queue.record_inbound(
            session,
            channel=CHANNEL,
            address=incoming.address,
            text=incoming.text,
            external_id=incoming.external_id,
            payload=incoming.stored_payload(),
        )
        result = KeywordResult(found.message.id, found.case.id, found.duplicate)
        if found.duplicate:
            return result
        contact, case = found.contact, found.case
        replies: list[dict[str, Any]] = []
        if keyword is Keyword.STOP:
            mark_opted_out(session, contact, case)
        elif keyword is Keyword.START:
            if contact.opted_out:
                _event(session, case, "opted_in")
            contact.opted_out = False
            contact.unreachable_since = None
        else:
            language = help_language(contact, incoming)
            replies.append(render("utter_sms_help", language, CHANNEL, dict(KEYWORD_VALUES)))
        queue.record_replies(session, found.message, replies, MessageStatus.PENDING.value)
        return result


#: The order of Twilio's message statuses: a callback never moves a message back.
DELIVERY_ORDER = {
    "accepted": 0,
    "scheduled": 0,
    "queued": 1,
    "sending": 2,
    "sent": 3,
    "delivered": 4,
    "undelivered": 4,
    "failed": 4,
    "read": 5,
}
DELIVERED = frozenset({"delivered", "read"})
NOT_DELIVERED = frozenset({"undelivered", "failed"})
#: Error codes of an undelivered SMS that mean the number cannot receive one:
#: blocked (30004), unknown or inactive (30005), a landline or unreachable carrier (30006).
CANNOT_RECEIVE = frozenset({"30004", "30005", "30006"})


def record_delivery(sid: str, status: str, error_code: str | None) -> bool:
    """Records a status callback on the message Beacon sent as ``sid``.

    ``delivered`` makes it delivered; ``undelivered`` and ``failed`` make it
    failed with the status and Twilio's error code as its error (and the person
    unreachable when the number cannot receive SMS); the others only note the
    status. A status older than the one recorded (callbacks may arrive out of
    order) is ignored.

    Returns:
        False when no message was sent as ``sid`` (yet).
    """
    with session_scope() as session:
        message = session.execute(
            select(Message).where(
                Message.channel == CHANNEL,
                Message.direction == Direction.OUT.value,
                Message.provider_id == sid,
            )
        ).scalar_one_or_none()
        if message is None:
            return False
        payload = dict(message.payload or {})
        previous = str((payload.get("delivery") or {}).get("status"))
        if DELIVERY_ORDER.get(status, -1) < DELIVERY_ORDER.get(previous, -1):
            return True
        payload["delivery"] = {"status": status, "error_code": error_code}
        message.payload = payload
        if status in DELIVERED:
            message.status = MessageStatus.DELIVERED.value
            message.error = None
        elif status in NOT_DELIVERED:
            message.status = MessageStatus.FAILED.value
            message.error = f"{status}:{error_code}" if error_code else status
            if error_code in CANNOT_RECEIVE:
                case = session.get(Case, message.case_id)
                contact = session.get(Contact, case.contact_id)
                mark_unreachable(session, contact, case, CHANNEL, CHANNEL)
        return True
