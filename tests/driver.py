"""The one driver for a simulated community, used by every feature's tests (as
errbot's TestBot is used by every plugin's tests).

A `Community` wraps the real core with its real database, an in-memory platform
and a clock the test moves. Members speak to it the way an adapter would deliver
them: `say` a command, `press` a button, `submit` a form, `react` to a message
(`unreact`, `delete_message`), post a `message`, `join` or `leave`, `open_home`;
`advance` moves time and runs whatever is due; `deliver` drains the outbox; `dms`
and `posts` read what reached the platform."""

from __future__ import annotations

import asyncio
import itertools
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import select

from bot.core.app import Kindred
from bot.core.figures import Stored
from bot.core.mentions import strip_markup_for_plain_text
from bot.core.platform import Button, Inbound, InboundKind, Message, MessageRef, Reply
from bot.core.templates import Templates
from storage.models import OutboxMessage
from tests.fakes.platform import FakePlatform, Sent

_event_ids = itertools.count(1)


class MovableClock(Protocol):
    now: datetime


def plain(text: str | Reply | Message | None) -> str:
    """What a member reads: neutral markup stripped. A reply that only updates the
    message its button sat on reads as that update."""
    if isinstance(text, Reply):
        text = text.message or text.update_original
    if isinstance(text, Message):
        text = text.text
    return strip_markup_for_plain_text(text or "")


BUNDLED_TEMPLATES = Templates(Path(__file__).resolve().parent.parent / "config" / "templates")


def privacy_lines(stored: Stored, templates: Templates = BUNDLED_TEMPLATES) -> list[str]:
    """The lines `/kindred privacy` shows for one feature's `stored_about`, as a
    member reads them (rendered the way the core renders them)."""
    return [plain(line) for line in templates.lines(stored.template, **stored.values)]


def contribution_words(kind: str) -> str:
    """How recognition (`kudos why`) names a contribution of this kind."""
    return BUNDLED_TEMPLATES.labels("kudos/contributions")[kind]


class Community:
    def __init__(
        self,
        kindred: Kindred,
        platform: FakePlatform,
        clock: MovableClock,
        *,
        workspace: str = "W1",
        channel: str | None = "CGENERAL",
        admin: str = "UADMIN",
        deliver_each: bool = False,
    ) -> None:
        self.kindred = kindred
        self.platform = platform
        self.clock = clock
        self.workspace = workspace
        self.channel = channel
        self.admin = admin
        # Deliver the outbox after every event, as a running dispatcher soon would;
        # turn off to let several events queue up before one `deliver`.
        self.deliver_each = deliver_each
        platform.admins.add(admin)

    # -- what members do ------------------------------------------------------------

    def inbound(self, kind: InboundKind, user: str | None = None, **fields: Any) -> Inbound:
        """An event as an adapter delivers it, with a fresh delivery key."""
        user = self.admin if user is None else user
        fields.setdefault("event_id", f"ev{next(_event_ids)}")
        fields.setdefault("user_name", user.title())
        return Inbound(
            kind=kind,
            platform=self.platform.name,
            workspace_id=self.workspace,
            user_id=user,
            **fields,
        )

    async def handle(self, inbound: Inbound) -> Reply | None:
        reply = await self.kindred.handle(inbound)
        if self.deliver_each:
            await self.deliver()
        return reply

    async def command(
        self, text: str, user: str | None = None, channel: str | None = "", **fields: Any
    ) -> Reply:
        """`/kindred <text>` typed by `user` in `channel` (the community's by default)."""
        where = self.channel if channel == "" else channel
        reply = await self.handle(
            self.inbound("command", user, text=text, channel_id=where, **fields)
        )
        assert reply is not None, f"/kindred {text} gave no answer"
        return reply

    async def say(
        self, text: str, user: str | None = None, channel: str | None = "", **fields: Any
    ) -> str:
        """The plain text of the answer to `/kindred <text>`."""
        reply = await self.command(text, user, channel, **fields)
        assert reply.message is not None, f"/kindred {text} answered with no message"
        return plain(reply.message.text)

    async def press(
        self,
        button: Button | str,
        user: str | None = None,
        value: str | None = None,
        message: MessageRef | None = None,
        **fields: Any,
    ) -> Reply:
        """Press a button (a `Button` a message carried, or an action id)."""
        action_id, default = (
            (button.action_id, button.value) if isinstance(button, Button) else (button, "")
        )
        reply = await self.handle(
            self.inbound(
                "button",
                user,
                action_id=action_id,
                value=default if value is None else value,
                message=message,
                **fields,
            )
        )
        assert reply is not None, f"pressing {action_id} gave no answer"
        return reply

    async def submit(
        self, callback_id: str, value: str = "", user: str | None = None, **form: str
    ) -> Reply:
        """Submit a form (modal) with its field values."""
        reply = await self.handle(
            self.inbound("modal_submit", user, action_id=callback_id, value=value, options=form)
        )
        assert reply is not None, f"submitting {callback_id} gave no answer"
        return reply

    async def react(
        self,
        reaction: str,
        user: str | None = None,
        *,
        text: str = "",
        channel: str | None = "",
        message: MessageRef | None = None,
        **fields: Any,
    ) -> Reply | None:
        where = self.channel if channel == "" else channel
        return await self.handle(
            self.inbound(
                "reaction",
                user,
                reaction=reaction,
                text=text,
                channel_id=where,
                message=message,
                **fields,
            )
        )

    async def unreact(
        self,
        reaction: str,
        user: str | None = None,
        *,
        channel: str | None = "",
        message: MessageRef | None = None,
        **fields: Any,
    ) -> Reply | None:
        """`user` takes back their `reaction` on `message`."""
        where = self.channel if channel == "" else channel
        return await self.handle(
            self.inbound(
                "reaction_removed",
                user,
                reaction=reaction,
                channel_id=where,
                message=message,
                **fields,
            )
        )

    async def delete_message(
        self, message: MessageRef, author: str = "", **fields: Any
    ) -> Reply | None:
        """`message` (by `author`, when the platform says) is deleted."""
        return await self.handle(
            self.inbound(
                "message_deleted",
                author,
                channel_id=message.channel_id,
                message=message,
                user_name=None,
                **fields,
            )
        )

    async def message(
        self,
        user: str,
        *,
        channel: str | None = "",
        reply_to: str | None = None,
        text: str = "",
        **fields: Any,
    ) -> Reply | None:
        """`user` posts a message in `channel` (the community's by default); with
        `reply_to`, it answers that member's message (in a thread, or as a reply)."""
        where = self.channel if channel == "" else channel
        options = {"reply_to": reply_to} if reply_to else {}
        return await self.handle(
            self.inbound("message", user, channel_id=where, text=text, options=options, **fields)
        )

    async def join(self, user: str, channel: str | None = None, **fields: Any) -> Reply | None:
        """`user` joins the workspace (or `channel`, when given)."""
        kind: InboundKind = "channel_joined" if channel else "member_joined"
        return await self.handle(self.inbound(kind, user, channel_id=channel, **fields))

    async def leave(self, user: str, channel: str | None = None) -> Reply | None:
        return await self.handle(self.inbound("member_left", user, channel_id=channel))

    async def open_home(self, user: str) -> Reply:
        """`user` opens the app's home tab; the reply is every feature's section."""
        reply = await self.handle(self.inbound("home_opened", user))
        assert reply is not None, "opening the home tab gave no answer"
        return reply

    # -- time and delivery ------------------------------------------------------------

    async def advance(self, to: datetime | None = None, **delta: float) -> datetime:
        """Move the clock (to a moment, or by a delta), run everything due as the
        ticks would, and deliver what it queued."""
        self.clock.now = to if to is not None else self.clock.now + timedelta(**delta)
        await self.kindred.scheduler.catch_up()
        await self.deliver()
        return self.clock.now

    async def deliver(self) -> None:
        """Drain the outbox; fail with what is still owed if it does not drain."""
        try:
            async with asyncio.timeout(10):
                await self.kindred.dispatcher.drain()
        except TimeoutError:
            async with self.kindred.db.sessions() as session:
                rows = (await session.execute(select(OutboxMessage))).scalars()
                owed = [
                    (row.id, row.kind, row.status, row.attempts, row.last_error)
                    for row in rows
                    if row.status != "sent"
                ]
            raise AssertionError(f"the outbox did not drain: {owed}") from None

    # -- what reached the platform --------------------------------------------------

    def sent(self, kind: str | None = None, target: str | None = None) -> list[Sent]:
        return [
            sent
            for sent in self.platform.sent
            if (kind is None or sent.kind == kind) and (target is None or sent.target == target)
        ]

    def dms(self, user: str, containing: str = "") -> list[str]:
        return [text for text in self.platform.texts("dm", user) if containing in text]

    def posts(self, channel: str | None = None, containing: str = "") -> list[str]:
        where = channel or self.channel
        return [text for text in self.platform.texts("post", where) if containing in text]

    def last(self, kind: str, target: str | None = None) -> Sent:
        matching = self.sent(kind, target)
        assert matching, f"nothing of kind {kind} sent to {target}"
        return matching[-1]

    def buttons(self, kind: str | None = None, target: str | None = None) -> list[Button]:
        return [button for sent in self.sent(kind, target) for button in sent.message.buttons]
