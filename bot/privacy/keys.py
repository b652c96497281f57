"""Key rotation for personal data at rest.

``BEACON_SECRET_KEY`` holds one or more Fernet keys, comma-separated: the
first encrypts, all decrypt. To rotate: put a new key first (``beacon keys
new`` prints one), restart, run ``beacon keys rotate`` (it re-encrypts every
encrypted column with the first key and recomputes every contact's lookup
hash with the current ``BEACON_HASH_KEY``, and the hash of every block on
that contact's address), then remove the old key.

``BEACON_HASH_KEY`` may list earlier hash keys after the current one
(``new,old``): a block whose person's data was deleted cannot be re-keyed
by ``rotate`` (no address is left), so it is matched through the old key
when that address writes again, and re-keyed then
(:func:`bot.handoff.blocklist.block_of`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from cryptography.fernet import Fernet
from sqlalchemy import select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import flag_modified

from bot.db import session_scope
from bot.db.models import Block, Case, CaseNote, Consent, Contact, Message
from bot.handoff.queue import address_key

#: Every encrypted column, by model.
ENCRYPTED: tuple[tuple[Any, tuple[str, ...]], ...] = (
    (Contact, ("address",)),
    (Message, ("body",)),
    (Case, ("location",)),
    (CaseNote, ("body",)),
    (Consent, ("recipient", "reason")),
)


def new_key() -> str:
    """A fresh Fernet key."""
    return Fernet.generate_key().decode()


def _batches(session: Session, model: Any, size: int) -> Iterator[list[int]]:
    last = 0
    while True:
        ids = list(
            session.execute(
                select(model.id).where(model.id > last).order_by(model.id).limit(size)
            ).scalars()
        )
        if not ids:
            return
        yield ids
        last = ids[-1]


def rotate(batch: int = 500) -> dict[str, int]:
    """Re-encrypts every encrypted value with the first key; returns rows per table.

    Each batch is its own unit of work, so a long rotation can be interrupted
    and run again (every key still decrypts until it is removed).
    """
    counts: dict[str, int] = {}
    for model, columns in ENCRYPTED:
        counts[model.__tablename__] = 0
        with session_scope() as reader:
            batches = list(_batches(reader, model, batch))
        for ids in batches:
            with session_scope() as session:
                for row in session.execute(select(model).where(model.id.in_(ids))).scalars():
                    for column in columns:
                        if getattr(row, column) is not None:
                            flag_modified(row, column)
                    if model is Contact and row.address is not None:
                        old = row.address_hash
                        row.address_hash = address_key(row.channel, row.address)
                        if old != row.address_hash:
                            session.execute(
                                update(Block)
                                .where(Block.channel == row.channel, Block.address_hash == old)
                                .values(address_hash=row.address_hash)
                            )
                    counts[model.__tablename__] += 1
    return counts
