"""What each kind of Telegram update becomes: the handlers of the Telegram channel.

Every handler is registered in :meth:`UpdateHandlers.handlers`, in the order
python-telegram-bot tries them (the first that matches handles the update):

- private chats: ``/start`` and text, a shared location (it also becomes the
  case's location; a live location's updates only move it), a shared contact,
  photos, voice notes, videos, audio, documents and stickers (kept as a
  reference a responder can open from the console, never downloaded on
  receipt), edited messages (kept and answered like new ones) and the
  presses of reply buttons (inline keyboards; the press is answered so the
  app stops its spinner). Each becomes an :class:`~bot.conversation.Incoming`
  whose ``external_id`` is the update's ``update_id``, given to the inbox,
  which stores it before the webhook is answered.
- groups, supergroups and channels: a polite refusal in the sender's language
  and the bot leaves; nothing is stored.
- ``my_chat_member``: a person who blocks the bot is marked unreachable (and
  reachable again when they unblock it); being added to a group is refused.
- anything else is acknowledged and logged by its type only.

Privacy: a message's ``payload`` (where the attachment reference and the
language hint are kept) is not encrypted, its text is. So names, phone numbers
and coordinates only ever go into the text; the attachment holds the kind and
Telegram's file ids. Logs carry update ids and kinds, never content or chat ids.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from telegram import Chat, ChatMember, Message, Update, User
from telegram.error import TelegramError
from telegram.ext import (
    BaseHandler,
    CallbackQueryHandler,
    ChatMemberHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot.channels.inbox import Inbox
from bot.conversation import Accepted, Incoming
from bot.db import session_scope
from bot.db.models import Case, CaseStatus, Contact
from bot.handoff.queue import address_key
from bot.handoff.relay import mark_unreachable
from bot.i18n.nlg import render
from bot.screening import ScreeningContext, detect_language

log = logging.getLogger(__name__)

CHANNEL = "telegram"

PRIVATE = filters.ChatType.PRIVATE
NEW_OR_EDITED = filters.UpdateType.MESSAGE | filters.UpdateType.EDITED_MESSAGE
MEDIA = (
    filters.PHOTO
    | filters.VOICE
    | filters.VIDEO
    | filters.VIDEO_NOTE
    | filters.AUDIO
    | filters.ANIMATION
    | filters.Document.ALL
    | filters.Sticker.ALL
)
NOT_PRIVATE = filters.ChatType.GROUPS | filters.ChatType.CHANNEL


def update_kind(update: object) -> str:
    """The update's type (``message``, ``poll``, ...), for logs: never its content."""
    if isinstance(update, Update):
        for key in update.to_dict():
            if key != "update_id":
                return str(key)
    return type(update).__name__


def hints(user: User | None, *, edited: bool = False) -> dict[str, str]:
    """The language prior (the person's Telegram app language) and whether it is an edit."""
    found: dict[str, str] = {}
    if user is not None and user.language_code:
        found["language_code"] = user.language_code[:16]
    if edited:
        found["edited"] = "true"
    return found


def media_reference(message: Message) -> dict[str, Any] | None:
    """A reference to the photo, voice note, file ... of ``message``: kind and file ids only."""
    kind: str
    file: Any
    mime: str | None
    if message.photo:
        kind, file, mime = "photo", message.photo[-1], "image/jpeg"
    elif message.voice:
        kind, file, mime = "voice", message.voice, message.voice.mime_type or "audio/ogg"
    elif message.video_note:
        kind, file, mime = "video_note", message.video_note, "video/mp4"
    elif message.video:
        kind, file, mime = "video", message.video, message.video.mime_type or "video/mp4"
    elif message.audio:
        kind, file, mime = "audio", message.audio, message.audio.mime_type
    elif message.animation:
        kind, file, mime = "animation", message.animation, message.animation.mime_type
    elif message.sticker:
        sticker = message.sticker
        mime = "video/webm" if sticker.is_video else "image/webp"
        kind, file = "sticker", sticker
        if sticker.is_animated:
            mime = "application/x-tgsticker"
    elif message.document:
        kind, file, mime = "document", message.document, message.document.mime_type
    else:
        return None
    return {
        "kind": kind,
        "file_id": file.file_id,
        "file_unique_id": file.file_unique_id,
        "mime_type": mime or "application/octet-stream",
        "file_size": file.file_size,
    }


def location_text(message: Message) -> str | None:
    """A shared location (or venue) as text for the team: ``13.756300, 100.501800``."""
    if message.venue is not None:
        venue = message.venue
        point = f"{venue.location.latitude:.6f}, {venue.location.longitude:.6f}"
        return f"{venue.title}, {venue.address} ({point})"
    if message.location is not None:
        return f"{message.location.latitude:.6f}, {message.location.longitude:.6f}"
    return None


def contact_text(message: Message) -> str:
    """A shared contact card as text for the team (kept encrypted, like every message)."""
    contact = message.contact
    if contact is None:
        return ""
    name = " ".join(part for part in (contact.first_name, contact.last_name) if part)
    return f"👤 {name}, {contact.phone_number}".strip()


def _language(user: User | None) -> str:
    context = ScreeningContext(language_code=user.language_code if user else None)
    return detect_language("", context)[0]


class UpdateHandlers:
    """Turns updates into stored inbound messages; ``inbox`` gives the gateway's inbox."""

    def __init__(self, inbox: Callable[[], Inbox | None]) -> None:
        self._inbox = inbox

    def handlers(self) -> list[BaseHandler[Update, ContextTypes.DEFAULT_TYPE, None]]:
        """Every handler, in the order they are tried (one group: the first match wins)."""
        private = PRIVATE & NEW_OR_EDITED
        return [
            # Service messages (the bot added, members joining) are left to my_chat_member.
            MessageHandler(NOT_PRIVATE & ~filters.StatusUpdate.ALL, self.not_private),
            ChatMemberHandler(self.membership, ChatMemberHandler.MY_CHAT_MEMBER),
            CallbackQueryHandler(self.button),
            CommandHandler("start", self.text, filters=private),
            MessageHandler(private & filters.LOCATION, self.location),
            MessageHandler(private & filters.CONTACT, self.contact),
            MessageHandler(private & MEDIA, self.media),
            MessageHandler(private & filters.TEXT, self.text),
            TypeHandler(Update, self.other),
        ]

    # --- private chats ------------------------------------------------------------------------

    async def _receive(self, incoming: Incoming) -> Accepted:
        inbox = self._inbox()
        if inbox is None:
            raise RuntimeError("the Telegram channel is not started")
        return await inbox.receive(incoming)

    @staticmethod
    def _incoming(update: Update, text: str, attachment: dict[str, Any] | None = None) -> Incoming:
        message = update.effective_message
        assert message is not None
        return Incoming(
            channel=CHANNEL,
            address=str(message.chat.id),
            text=text,
            external_id=str(update.update_id),
            hints=hints(message.from_user, edited=update.edited_message is not None),
            attachment=attachment,
            provider_id=str(message.message_id),
        )

    async def text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Words (and ``/start``, which the gateway answers with a discreet greeting)."""
        message = update.effective_message
        assert message is not None
        await self._receive(self._incoming(update, message.text or ""))
        _received(update, "text")

    async def location(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A shared location: kept as a message and as the case's location."""
        message = update.effective_message
        assert message is not None
        where = location_text(message) or ""
        if update.edited_message is not None:
            # A live location moving: not a new message, the case's location follows it.
            await run_in_threadpool(_move_location, str(message.chat.id), where)
            log.info("telegram_live_location", extra={"fields": {"update_id": update.update_id}})
            return
        kind = "venue" if message.venue else "location"
        incoming = self._incoming(update, f"📍 {where}", {"kind": kind, "described": True})
        accepted = await self._receive(incoming)
        await run_in_threadpool(_set_location, accepted.case_id, where)
        _received(update, "location")

    async def contact(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A shared contact card: its name and number go in the (encrypted) text only."""
        message = update.effective_message
        assert message is not None
        incoming = self._incoming(
            update, contact_text(message), {"kind": "contact", "described": True}
        )
        await self._receive(incoming)
        _received(update, "contact")

    async def media(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A photo, voice note, file ...: a reference the console can open; the caption is text."""
        message = update.effective_message
        assert message is not None
        reference = media_reference(message)
        await self._receive(self._incoming(update, message.caption or "", reference))
        _received(update, reference["kind"] if reference else "media")

    async def button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A reply button pressed: its payload (and its title, as the text) go to the assistant."""
        query = update.callback_query
        assert query is not None
        chat = query.message.chat if query.message is not None else None
        if chat is not None and chat.type != Chat.PRIVATE:
            await _answer_query(query)
            await _refuse_and_leave(context, chat, query.from_user)
            return
        title = query.data or ""
        keyboard = getattr(query.message, "reply_markup", None)
        for row in getattr(keyboard, "inline_keyboard", ()) or ():
            for key in row:
                if key.callback_data == query.data:
                    title = key.text
        await self._receive(
            Incoming(
                channel=CHANNEL,
                address=str(chat.id if chat is not None else query.from_user.id),
                text=title,
                external_id=str(update.update_id),
                payload=query.data,
                hints=hints(query.from_user),
            )
        )
        await _answer_query(query)
        _received(update, "button")

    # --- everything else ----------------------------------------------------------------------

    async def not_private(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A group or channel: Beacon serves private chats only, says so, and leaves."""
        chat = update.effective_chat
        if chat is None:
            return
        await _refuse_and_leave(context, chat, update.effective_user)
        log.info("telegram_group_refused", extra={"fields": {"update_id": update.update_id}})

    async def membership(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """The bot's own membership changed: blocked or unblocked by a person, added to a group."""
        changed = update.my_chat_member
        assert changed is not None
        status = changed.new_chat_member.status
        chat = changed.chat
        if chat.type == Chat.PRIVATE:
            blocked = status == ChatMember.BANNED
            await run_in_threadpool(_mark_reachable, str(chat.id), not blocked)
            log.info(
                "telegram_membership",
                extra={"fields": {"update_id": update.update_id, "blocked": blocked}},
            )
            return
        if status in (ChatMember.MEMBER, ChatMember.ADMINISTRATOR):
            await _refuse_and_leave(context, chat, changed.from_user)
            log.info("telegram_group_refused", extra={"fields": {"update_id": update.update_id}})

    async def other(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """An update Beacon has no use for: acknowledged, logged by its type only."""
        log.info(
            "telegram_update_ignored",
            extra={"fields": {"update_id": update.update_id, "type": update_kind(update)}},
        )


def _received(update: Update, kind: str) -> None:
    log.info("telegram_received", extra={"fields": {"update_id": update.update_id, "kind": kind}})


async def _answer_query(query: Any) -> None:
    try:
        await query.answer()
    except TelegramError as exc:  # too old to answer: the press is still kept
        log.info("telegram_answer_failed", extra={"fields": {"error": type(exc).__name__}})


async def _refuse_and_leave(
    context: ContextTypes.DEFAULT_TYPE, chat: Chat, user: User | None
) -> None:
    """Says (in the sender's language) that Beacon talks in private chats only, then leaves."""
    try:
        if chat.type != Chat.CHANNEL:
            refusal = render("utter_private_only", _language(user), CHANNEL, {})
            await context.bot.send_message(chat_id=chat.id, text=str(refusal["text"]))
        await context.bot.leave_chat(chat_id=chat.id)
    except TelegramError as exc:
        log.warning("telegram_leave_failed", extra={"fields": {"error": type(exc).__name__}})


# --- database steps -------------------------------------------------------------------------


def _contact(session: Any, chat_id: str) -> Contact | None:
    found: Contact | None = session.execute(
        select(Contact).where(
            Contact.channel == CHANNEL, Contact.address_hash == address_key(CHANNEL, chat_id)
        )
    ).scalar_one_or_none()
    return found


def _open_case(session: Any, contact: Contact) -> Case | None:
    found: Case | None = session.execute(
        select(Case)
        .where(Case.contact_id == contact.id, Case.status != CaseStatus.RESOLVED.value)
        .order_by(Case.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    return found


def _set_location(case_id: int, where: str) -> None:
    """The case's location (encrypted at rest) becomes the one the person shared."""
    if not where:
        return
    with session_scope() as session:
        case = session.get(Case, case_id)
        if case is not None:
            case.location = where


def _move_location(chat_id: str, where: str) -> None:
    """A live location's update moves the location of the person's open case, if any."""
    with session_scope() as session:
        contact = _contact(session, chat_id)
        case = _open_case(session, contact) if contact is not None else None
        if case is not None and where:
            case.location = where


def _mark_reachable(chat_id: str, reachable: bool) -> None:
    """A person blocked (or unblocked) the bot: the console shows it on their case."""
    with session_scope() as session:
        contact = _contact(session, chat_id)
        if contact is None:
            return
        if reachable:
            contact.unreachable_since = None
        elif contact.unreachable_since is None:
            mark_unreachable(session, contact, _open_case(session, contact), CHANNEL, CHANNEL)
