"""The console adapter: a simulated community in a terminal, no tokens needed.

You type as a member; every message the bot sends to anyone is printed, with
buttons as numbered choices. Lines starting with `:` drive the simulation:

  /kindred …            run a command as the current member in the current channel
  :as bob               act as another member
  :in #coffee           move to another channel
  :join newbie          someone joins the community (a new member is created)
  :press 3              press button number 3 (a bare `3` works too)
  :submit a=1 b="x y"   fill in the form that was just opened
  :say text             post a message in the current channel
  :react 12 pushpin     react to message number 12
  :unreact 12 pushpin   take that reaction back
  :delete 12            delete message number 12 (one you posted with :say)
  :home                 open your home tab (your programs and profile)
  :advance 7d           move the clock forward (30m, 2h, 7d) running what falls due
  :who                  list the members
  :quit                 leave

Reads a script from stdin when stdin is not a terminal.

On a database file the console keeps its own state beside it (`kindred.db` →
`kindred.db-console.json`): the simulated clock, the group conversations it
opened, the members who joined and its numbered messages and buttons, so a
restart on the same database carries on where the last run stopped.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import logging
import os
import re
import shlex
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, TextIO

import yaml
from sqlalchemy.engine import URL

from bot.core.app import Kindred
from bot.core.mentions import local_times_in_utc, member_text, render
from bot.core.platform import (
    Button,
    ButtonStyle,
    CalendarEvent,
    Inbound,
    MemberInfo,
    Message,
    MessageRef,
    Modal,
    NotSupported,
    PlatformError,
    RateLimit,
    Reply,
)
from bot.core.scheduler import NextDue
from bot.core.settings import Settings
from storage import members

log = logging.getLogger(__name__)

PLATFORM = "console"
# `:advance` jumps from one due moment to the next; a tick that cannot say when it
# is next due (no `next_due` hook) is given a look at least this often instead.
ADVANCE_STEP = timedelta(minutes=15)
MAX_ADVANCE = timedelta(days=31)
_CHANNEL_LINK = re.compile(r"<#([A-Za-z0-9_.\-]+)(?:\|[^>]*)?>")
STATE_VERSION = 1
# The latest numbered messages and buttons a restart keeps (for `:react`, `:press`).
KEEP_NUMBERED = 500


@dataclass
class ConsoleCommunity:
    workspace_id: str
    name: str
    admins: set[str]
    channels: dict[str, str]
    members: dict[str, dict[str, Any]]

    @classmethod
    def load(cls, path: Path) -> ConsoleCommunity:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        return cls(
            workspace_id=str(data["workspace"]),
            name=str(data.get("name", data["workspace"])),
            admins=set(data.get("admins", [])),
            channels={str(c["id"]): str(c.get("name", c["id"])) for c in data["channels"]},
            members={str(m["id"]): dict(m) for m in data["members"]},
        )


@dataclass
class ConsolePlatform:
    """Implements the Platform port by printing; keeps what it sent for `:press`."""

    community: ConsoleCommunity
    write: Callable[[str], None]
    name: str = PLATFORM
    # The console has no roles; recognition shows its badge on the profile card and home.
    supports_roles: bool = False
    scheduled_events: bool = False
    buttons: dict[int, tuple[Button, MessageRef, str]] = field(default_factory=dict)
    messages: dict[str, tuple[str, str]] = field(default_factory=dict)
    # Who wrote the members' messages (`:say`), by message number, for reactions.
    authors: dict[str, str] = field(default_factory=dict)
    groups: dict[str, list[str]] = field(default_factory=dict)
    # The numbers the next button, message and group get (kept across restarts, so
    # a new message never takes the number of one the database still refers to).
    next_button: int = 1
    next_message: int = 1
    next_group: int = 1
    # Called when a group opens: later deliveries need it, so it is saved at once.
    on_group_opened: Callable[[], None] = lambda: None

    async def list_members(
        self, workspace_id: str, channel_id: str | None = None
    ) -> Sequence[MemberInfo]:
        return [
            MemberInfo(
                user_id=user_id,
                display_name=str(data.get("name", user_id)),
                timezone=data.get("timezone"),
                is_admin=user_id in self.community.admins,
            )
            for user_id, data in self.community.members.items()
        ]

    async def is_admin(self, workspace_id: str, user_id: str) -> bool:
        return user_id in self.community.admins

    async def send_dm(self, workspace_id: str, user_id: str, message: Message) -> MessageRef:
        if user_id not in self.community.members:
            raise PlatformError(f"no member '{user_id}'")
        return self.show(f"DM → @{user_id}", f"dm-{user_id}", message)

    async def post_channel(
        self, workspace_id: str, channel_id: str, message: Message
    ) -> MessageRef:
        if channel_id in self.groups:
            where = "group " + ", ".join(f"@{user}" for user in self.groups[channel_id])
        elif channel_id in self.community.channels:
            where = f"#{self.community.channels[channel_id]}"
        else:
            raise PlatformError(f"no channel '{channel_id}'")
        return self.show(where, channel_id, message)

    async def open_group(
        self, workspace_id: str, user_ids: Sequence[str], channel_id: str | None, title: str
    ) -> str:
        group_id = f"group-{self.next_group}"
        self.next_group += 1
        self.groups[group_id] = list(user_ids)
        self.on_group_opened()
        return group_id

    async def reply_in_thread(
        self, workspace_id: str, parent: MessageRef, message: Message
    ) -> MessageRef:
        ref = self.show(f"thread of message {parent.message_id}", parent.channel_id, message)
        return MessageRef(ref.channel_id, ref.message_id, thread_id=parent.message_id)

    async def update_message(
        self, workspace_id: str, ref: MessageRef, message: Message
    ) -> MessageRef:
        self.replace(ref, message)
        return ref

    def replace(self, ref: MessageRef, message: Message) -> None:
        """Show the new version; the old version's buttons can no longer be pressed."""
        for number, (_, button_ref, _) in list(self.buttons.items()):
            if button_ref.message_id == ref.message_id:
                del self.buttons[number]
        self.show(f"message {ref.message_id} updated", ref.channel_id, message, ref.message_id)

    async def set_role(self, workspace_id: str, user_id: str, role: str, *, granted: bool) -> None:
        raise PlatformError("the console has no roles; the badge shows on the profile card")

    async def save_scheduled_event(
        self, workspace_id: str, event: CalendarEvent, existing_id: str | None
    ) -> MessageRef:
        raise NotSupported("the console has no scheduled events; features attach a calendar file")

    async def cancel_scheduled_event(self, workspace_id: str, event_id: str) -> MessageRef:
        raise NotSupported("the console has no scheduled events; features attach a calendar file")

    def rate_limits(self, kind: str, workspace_id: str, target: str) -> list[tuple[str, RateLimit]]:
        return []

    def show(
        self, where: str, channel_id: str, message: Message, message_id: str | None = None
    ) -> MessageRef:
        if message_id is None:
            message_id = str(self.next_message)
            self.next_message += 1
        ref = MessageRef(channel_id, message_id)
        text = self.plain(message.text)
        self.messages[message_id] = (channel_id, text)
        lines = [f"── [{message_id}] {where} ──", text]
        if message.buttons:
            choices = []
            for button in message.buttons:
                number = self.next_button
                self.next_button += 1
                self.buttons[number] = (button, ref, channel_id)
                choices.append(f"({number}) {button.label}")
            lines.append("   ".join(choices))
        attachment = message.attachment
        if attachment is not None and attachment.content_type.startswith("text/"):
            lines.append(f"📎 {attachment.filename}")
            lines.append(attachment.content.decode("utf-8", "replace"))
        elif attachment is not None:
            # A terminal cannot show an image: its name, size and alt text stand in.
            size = f"{len(attachment.content) / 1024:.0f} KB"
            lines.append(f"📎 {attachment.filename} ({attachment.content_type}, {size})")
            if attachment.alt_text and attachment.alt_text != text:
                lines.append(f"alt: {attachment.alt_text}")
        self.write("\n".join(lines))
        return ref

    def saved(self) -> dict[str, Any]:
        """What a restart needs to resolve later deliveries and numbers (JSON-ready)."""
        kept_messages = sorted(self.messages, key=_number)[-KEEP_NUMBERED:]
        return {
            "groups": self.groups,
            "next_button": self.next_button,
            "next_message": self.next_message,
            "next_group": self.next_group,
            "messages": {key: list(self.messages[key]) for key in kept_messages},
            "authors": {key: self.authors[key] for key in kept_messages if key in self.authors},
            "buttons": {
                str(number): {
                    "label": button.label,
                    "action_id": button.action_id,
                    "value": button.value,
                    "style": str(button.style),
                    "channel_id": ref.channel_id,
                    "message_id": ref.message_id,
                    "thread_id": ref.thread_id,
                    "shown_in": shown_in,
                }
                for number, (button, ref, shown_in) in sorted(self.buttons.items())[-KEEP_NUMBERED:]
            },
        }

    def restore(self, data: dict[str, Any]) -> None:
        """Take back `saved()`; raises KeyError, TypeError or ValueError on a malformed
        value before changing anything."""
        groups = {str(key): [str(user) for user in users] for key, users in data["groups"].items()}
        messages = {
            str(key): (str(channel), str(text)) for key, (channel, text) in data["messages"].items()
        }
        buttons = {
            int(number): (
                Button(
                    str(item["label"]),
                    str(item["action_id"]),
                    str(item["value"]),
                    ButtonStyle(item["style"]),
                ),
                MessageRef(
                    str(item["channel_id"]),
                    str(item["message_id"]),
                    None if item["thread_id"] is None else str(item["thread_id"]),
                ),
                str(item["shown_in"]),
            )
            for number, item in data["buttons"].items()
        }
        # State files written before authors were kept have none.
        authors = {str(key): str(user) for key, user in data.get("authors", {}).items()}
        numbers = [int(data[key]) for key in ("next_button", "next_message", "next_group")]
        self.groups, self.messages, self.buttons = groups, messages, buttons
        self.authors = authors
        self.next_button, self.next_message, self.next_group = numbers

    def plain(self, text: str) -> str:
        def name(user_id: str) -> str:
            return "@" + user_id

        rendered = local_times_in_utc(render(text, lambda segment: segment, name))
        return _CHANNEL_LINK.sub(
            lambda match: "#" + self.community.channels.get(match.group(1), match.group(1)),
            rendered,
        )


def _number(key: str) -> int:
    return int(key) if key.isdigit() else 0


def state_path(url: URL) -> Path | None:
    """Where the console keeps its state for the database at `url`: beside a SQLite
    file (`kindred.db-console.json`, like SQLite's own `-wal`), so it goes with the
    file; for a server database, in the working directory under a name derived from
    the URL (password left out); None for an in-memory database (nothing outlives it)."""
    if url.get_backend_name() == "sqlite":
        if not url.database or url.database == ":memory:" or url.database.startswith("file:"):
            return None
        return Path(url.database + "-console.json")
    digest = hashlib.sha256(url.render_as_string(hide_password=True).encode()).hexdigest()
    return Path(f".kindred-console-{digest[:12]}.json")


class ConsoleSession:
    """Reads lines, turns them into `Inbound` values and prints what comes back."""

    def __init__(
        self,
        kindred: Kindred,
        community: ConsoleCommunity,
        output: TextIO = sys.stdout,
        clock_offset: Callable[[timedelta], None] | None = None,
        state_file: Path | None = None,
    ) -> None:
        self.kindred = kindred
        self.community = community
        self.output = output
        self.platform = ConsolePlatform(community, self.write)
        self.user = (
            sorted(community.admins)[0] if community.admins else next(iter(community.members))
        )
        self.channel = next(iter(community.channels))
        self.pending_modal: tuple[Modal, str | None] | None = None
        self.clock_offset = clock_offset
        # How far the simulated clock is ahead of the real one (the sum of every
        # `clock_offset` call), and the members `:join` added: both are saved.
        self.offset = timedelta(0)
        self.joined: dict[str, dict[str, Any]] = {}
        self.state_file = state_file
        # Ties the saved state to this database: the console community's creation time.
        self._database_mark: str | None = None
        self.platform.on_group_opened = self.save
        self._event_numbers = itertools.count(1)
        kindred.attach(self.platform)

    def write(self, text: str) -> None:
        print(text, file=self.output, flush=True)

    async def seed(self) -> None:
        """Put the demo community's members and profiles in the database once."""
        async with self.kindred.db.transaction() as session:
            community = await members.ensure_community(
                session, PLATFORM, self.community.workspace_id, self.community.name
            )
            self._database_mark = community.created_at.isoformat()
            for user_id, data in self.community.members.items():
                existing = await members.get_member(
                    session, PLATFORM, self.community.workspace_id, user_id
                )
                if existing is not None:
                    continue
                member = await members.ensure_member(
                    session, PLATFORM, self.community.workspace_id, user_id, data.get("name")
                )
                for key in ("company", "industry", "role", "seniority", "timezone", "bio"):
                    if data.get(key):
                        setattr(member, key, str(data[key]))
                member.topics = [str(topic) for topic in data.get("topics", [])]

    async def restore(self) -> None:
        """Take back the state the last run on this database saved (after `seed`,
        before the core starts), or say why the console starts fresh."""
        path = self.state_file
        if path is None or not path.exists():
            return
        fresh = (
            "starting fresh: the clock is the real time, and group conversations, "
            "messages and buttons from before are forgotten."
        )
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("version") != STATE_VERSION:
                raise ValueError(f"format {data.get('version')!r}, not {STATE_VERSION}")
            if data["database"] != self._database_mark:
                self.write(
                    f"The console state in {path} belongs to an earlier database at this "
                    f"path; {fresh}"
                )
                return
            offset = timedelta(seconds=float(data["clock_offset_seconds"]))
            joined = {str(key): dict(value) for key, value in data["joined"].items()}
            self.platform.restore(data["platform"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            self.write(f"Could not read the console state in {path} ({error}); {fresh}")
            return
        self._move_clock(self.kindred.clock() + offset)
        self.joined = joined
        for user_id, data in joined.items():
            self.community.members.setdefault(user_id, data)
        groups = len(self.platform.groups)
        self.write(
            f"Restored the console state from {path}: the clock is "
            f"{self.kindred.clock():%a %d %b %Y %H:%M} UTC; {groups} group "
            f"conversation{'' if groups == 1 else 's'} kept."
        )

    def save(self) -> None:
        """Write the state a restart needs (atomically: a crash leaves the old file)."""
        path = self.state_file
        if path is None or self._database_mark is None:
            return
        data = {
            "version": STATE_VERSION,
            "database": self._database_mark,
            "clock_offset_seconds": self.offset.total_seconds(),
            "clock": self.kindred.clock().isoformat(),
            "joined": self.joined,
            "platform": self.platform.saved(),
        }
        partial_file = path.with_name(path.name + ".tmp")
        try:
            partial_file.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
            os.replace(partial_file, path)
        except OSError:
            log.warning("could not save the console state to %s", path, exc_info=True)

    def _move_clock(self, to: datetime) -> None:
        """Set the simulated clock to `to` (never backwards)."""
        if self.clock_offset is None:
            return
        by = to - self.kindred.clock()
        if by > timedelta(0):
            self.clock_offset(by)
            self.offset += by

    @property
    def prompt(self) -> str:
        return f"{self.user}@#{self.community.channels.get(self.channel, self.channel)}> "

    async def run(self, lines: TextIO = sys.stdin) -> None:
        interactive = lines.isatty()
        self.write(
            f"Kindred console: {self.community.name}. You are @{self.user} in "
            f"#{self.community.channels[self.channel]}. Type /kindred help, or :help."
        )
        loop = asyncio.get_running_loop()
        while True:
            if interactive:
                self.output.write(self.prompt)
                self.output.flush()
            line = await loop.run_in_executor(None, lines.readline)
            if not line:
                break
            if not interactive and line.strip() and not line.startswith("#"):
                self.write(f"{self.prompt}{line.rstrip()}")
            carry_on = await self.execute(line.strip())
            self.save()
            if not carry_on:
                break

    async def execute(self, line: str) -> bool:
        """Run one input line; False when the session should end."""
        if not line or line.startswith("#"):
            return True
        if line.startswith("/kindred"):
            await self.send(self._inbound("command", text=line[len("/kindred") :].strip()))
        elif line.isdigit():
            await self.press(int(line))
        elif line.startswith(":"):
            verb, _, rest = line[1:].partition(" ")
            return await self._simulate(verb.lower(), rest.strip())
        else:
            self.write("Commands start with /kindred; simulation verbs with ':' (try :help).")
        return True

    async def _simulate(self, verb: str, rest: str) -> bool:
        if verb in {"quit", "exit", "q"}:
            return False
        if verb == "help":
            self.write(__doc__ or "")
        elif verb == "as":
            self._switch_user(rest.lstrip("@"))
        elif verb == "in":
            self._switch_channel(rest.lstrip("#"))
        elif verb == "join":
            await self._join(rest.lstrip("@"))
        elif verb == "press" and rest.isdigit():
            await self.press(int(rest))
        elif verb == "submit":
            await self._submit(rest)
        elif verb == "say":
            # Shown with a number, like the bot's messages, so `:react` can target it.
            where = f"#{self.community.channels.get(self.channel, self.channel)} @{self.user}"
            ref = self.platform.show(where, self.channel, Message(text=member_text(rest)))
            self.platform.authors[ref.message_id] = self.user
            await self.send(self._inbound("message", text=rest, message=ref))
        elif verb == "react":
            await self._react(rest)
        elif verb == "unreact":
            await self._react(rest, removed=True)
        elif verb == "delete":
            await self._delete(rest)
        elif verb == "home":
            await self.send(self._inbound("home_opened"))
        elif verb == "advance":
            await self._advance(rest)
        elif verb == "who":
            for user_id, data in self.community.members.items():
                admin = " (admin)" if user_id in self.community.admins else ""
                self.write(f"@{user_id}: {data.get('name', user_id)}{admin}")
        else:
            self.write(f"Unknown simulation verb ':{verb}'. Try :help.")
        return True

    def _switch_user(self, user_id: str) -> None:
        if user_id not in self.community.members:
            self.write(f"No member @{user_id}. Try :who, or :join {user_id}.")
            return
        self.user = user_id
        self.write(f"You are now @{user_id}.")

    def _switch_channel(self, channel: str) -> None:
        by_name = {name: channel_id for channel_id, name in self.community.channels.items()}
        channel_id = by_name.get(channel, channel)
        if channel_id not in self.community.channels:
            known = ", ".join(f"#{name}" for name in self.community.channels.values())
            self.write(f"No channel #{channel}. Channels: {known}.")
            return
        self.channel = channel_id
        self.write(f"You are now in #{self.community.channels[channel_id]}.")

    async def _join(self, user_id: str) -> None:
        if not re.fullmatch(r"[a-z0-9_.\-]{1,40}", user_id):
            self.write("Give the newcomer a simple handle, like :join newbie.")
            return
        if user_id in self.community.members:
            # No platform sends a join for a current member; welcome would take it
            # as a first arrival, since it only knows who it welcomed.
            self.write(f"@{user_id} is already a member. Give a newcomer a new handle.")
            return
        self.community.members[user_id] = {"id": user_id, "name": user_id.title()}
        self.joined[user_id] = self.community.members[user_id]
        self.save()
        self.write(f"@{user_id} joined {self.community.name}.")
        await self.send(self._inbound("member_joined", user=user_id, user_name=user_id.title()))

    async def press(self, number: int) -> None:
        found = self.platform.buttons.get(number)
        if found is None:
            self.write(f"There is no button ({number}) on screen.")
            return
        button, ref, channel_id = found
        await self.send(
            self._inbound(
                "button",
                action_id=button.action_id,
                value=button.value,
                message=ref,
                channel=channel_id,
            )
        )

    async def _submit(self, rest: str) -> None:
        if self.pending_modal is None:
            self.write("No form is open.")
            return
        modal, channel = self.pending_modal
        try:
            pairs = shlex.split(rest)
        except ValueError:
            self.write('A quote is not closed; wrap values in "double quotes".')
            return
        values = dict(pair.partition("=")[::2] for pair in pairs)
        self.pending_modal = None
        await self.send(
            self._inbound(
                "modal_submit",
                action_id=modal.callback_id,
                value=modal.value,
                options=values,
                channel=channel,
            )
        )

    async def _react(self, rest: str, *, removed: bool = False) -> None:
        parts = rest.split()
        if len(parts) != 2 or parts[0] not in self.platform.messages:
            verb = "unreact" if removed else "react"
            self.write(f"Usage: :{verb} <message number> <emoji name>")
            return
        channel_id, text = self.platform.messages[parts[0]]
        await self.send(
            self._inbound(
                "reaction_removed" if removed else "reaction",
                reaction=parts[1].strip(":"),
                message=MessageRef(channel_id, parts[0]),
                message_author_id=self.platform.authors.get(parts[0]),
                text="" if removed else text,
                channel=channel_id,
            )
        )

    async def _delete(self, rest: str) -> None:
        number = rest.strip()
        author = self.platform.authors.get(number)
        if author is None:
            self.write("Usage: :delete <number of a message posted with :say>")
            return
        if author != self.user:
            self.write(f"Only @{author} can delete message {number}.")
            return
        channel_id, _ = self.platform.messages.pop(number)
        del self.platform.authors[number]
        self.write(f"Message {number} deleted.")
        await self.send(
            self._inbound(
                "message_deleted", message=MessageRef(channel_id, number), channel=channel_id
            )
        )

    async def _advance(self, rest: str) -> None:
        match = re.fullmatch(r"(\d+)([mhd])", rest)
        if match is None or self.clock_offset is None:
            self.write("Usage: :advance 30m | 2h | 7d")
            return
        unit = {"m": "minutes", "h": "hours", "d": "days"}[match.group(2)]
        remaining = timedelta(**{unit: int(match.group(1))})
        if remaining > MAX_ADVANCE:
            self.write("Advance at most 31 days at a time.")
            return
        # Jump from one due moment to the next so whatever falls due on the way runs
        # when the clock says so (a round, then its reminder, then its follow-up), in
        # order. Everything due up to `looked` has had its run, so the next look asks
        # what is due after it: work a run created meanwhile (the round's follow-ups,
        # or something due at once, which the moving clock has already reached) is
        # found, and an item whose run failed is retried by later looks, not spun on.
        looked = self.kindred.clock()
        target = looked + remaining
        hooks = self._next_due_hooks()
        scheduler = self.kindred.scheduler
        while looked < target:
            due = await scheduler.next_due(looked, hooks, ADVANCE_STEP)
            self._move_clock(target if due is None else min(due, target))
            looked = self.kindred.clock()
            runs = scheduler.runs
            await scheduler.catch_up()
            if scheduler.runs != runs:
                await self.kindred.dispatcher.drain()
        self.save()
        self.write(f"The clock is now {self.kindred.clock():%a %d %b %Y %H:%M} UTC.")

    def _next_due_hooks(self) -> dict[str, NextDue]:
        hooks: dict[str, NextDue] = {}
        for feature in self.kindred.features:
            for tick in feature.ticks:
                if tick.next_due is not None:
                    hooks[tick.name] = partial(tick.next_due, self.kindred)
        return hooks

    async def send(self, inbound: Inbound) -> None:
        reply = await self.kindred.handle(inbound)
        if reply is not None:
            self.show_reply(reply, inbound)
        await self.kindred.dispatcher.drain()

    def show_reply(self, reply: Reply, inbound: Inbound) -> None:
        if reply.update_original is not None and inbound.message is not None:
            self.platform.replace(inbound.message, reply.update_original)
        if reply.modal is not None:
            self.pending_modal = (reply.modal, inbound.channel_id)
            fields = " ".join(
                f'{field.field_id}="…"' + ("" if field.required else " (optional)")
                for field in reply.modal.fields
            )
            self.write(f"── form: {reply.modal.title} ──\nAnswer with :submit {fields}")
        if reply.message is not None:
            audience = "everyone" if reply.public else f"only @{inbound.user_id}"
            self.platform.show(f"reply ({audience} sees this)", self.channel, reply.message)

    def _inbound(
        self,
        kind: Any,
        *,
        text: str = "",
        user: str | None = None,
        user_name: str | None = None,
        channel: str | None = None,
        **extra: Any,
    ) -> Inbound:
        user_id = user or self.user
        if kind == "command":
            # Text platforms escape mentions; the console's `@bob` becomes `<@bob>`.
            text = re.sub(r"(?<![<\w])@([a-z0-9_.\-]+)", self._member_ref, text)
            text = re.sub(r"(?<![<\w])#([a-z0-9_\-]+)", self._channel_ref, text)
        return Inbound(
            kind=kind,
            platform=PLATFORM,
            workspace_id=self.community.workspace_id,
            user_id=user_id,
            user_name=user_name or str(self.community.members.get(user_id, {}).get("name", "")),
            channel_id=channel or self.channel,
            text=text,
            event_id=f"console-{datetime.now().timestamp()}-{next(self._event_numbers)}",
            **extra,
        )

    def _member_ref(self, match: re.Match[str]) -> str:
        known = match.group(1) in self.community.members
        return f"<@{match.group(1)}>" if known else match.group(0)

    def _channel_ref(self, match: re.Match[str]) -> str:
        by_name = {name: channel_id for channel_id, name in self.community.channels.items()}
        channel_id = by_name.get(match.group(1), match.group(1))
        return f"<#{channel_id}>" if channel_id in self.community.channels else match.group(0)


async def serve_console(
    kindred: Kindred,
    settings: Settings,
    advance_clock: Callable[[timedelta], None] | None = None,
    lines: TextIO = sys.stdin,
    output: TextIO = sys.stdout,
) -> None:
    community = ConsoleCommunity.load(settings.config_dir / "console.yml")
    state_file = state_path(kindred.db.url) if advance_clock is not None else None
    session = ConsoleSession(kindred, community, output, advance_clock, state_file)
    await session.seed()
    await session.restore()
    await kindred.start()
    try:
        await session.run(lines)
    finally:
        await kindred.dispatcher.drain()
        await kindred.stop()
        session.save()
