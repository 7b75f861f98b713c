"""The core every adapter talks to: routes neutral inbound events to the shared
handlers, one transaction each, and owns the outbox dispatcher and scheduler."""

from __future__ import annotations

import asyncio
import difflib
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.arguments import ArgumentError, echo, parse_words, split_words, validate
from bot.core.background import Background
from bot.core.cleaning import clean_inbound
from bot.core.context import Context, Preparation
from bot.core.dispatcher import OutboxDispatcher
from bot.core.errors import CommandError
from bot.core.feature import Feature
from bot.core.figures import Figures, MemberAction, Period
from bot.core.formatting import feature_help, find_feature, help_overview
from bot.core.housekeeping import schedule_housekeeping
from bot.core.outbox import Outbox
from bot.core.platform import Identity, Inbound, Message, Platform, Reply
from bot.core.registry import CommandSpec, Handler, Handlers, Prepare, Registry
from bot.core.scheduler import JobScheduler
from bot.core.settings import Settings
from bot.core.templates import TemplateProblem, Templates
from storage import members, processed_events
from storage.db import Database
from storage.types import utcnow

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


class Kindred:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        *,
        features: Sequence[Feature] | None = None,
        extra_handlers: Sequence[Handlers] = (),
        clock: Clock = utcnow,
        instance: str | None = None,
    ) -> None:
        if features is None:
            from bot.commands import declared_features

            features = declared_features()
        self.settings = settings
        self.db = db
        self.features: Sequence[Feature] = tuple(features)
        # `extra_handlers`: tests add probe handlers beside the declared features.
        self.registry = Registry.merge([*(f.handlers for f in self.features), *extra_handlers])
        self.clock = clock
        self.instance = instance or uuid.uuid4().hex[:12]
        self.templates = Templates(settings.config_dir / "templates")
        self.platforms: dict[str, Platform] = {}
        self.dispatcher = OutboxDispatcher(db, {}, owner=f"outbox-{self.instance}")
        self.scheduler = JobScheduler(db, f"jobs-{self.instance}", clock, self.dispatcher.wake)
        self._dispatcher_task: asyncio.Task[None] | None = None
        self.background = Background()
        # `kindred run --platform all`: each adapter starts and stops the one core.
        self._adapters_started = 0

    @property
    def claims(self) -> JobScheduler:
        return self.scheduler

    def in_background(self, key: str, work: Callable[[], Awaitable[None]]) -> bool:
        return self.background.start(key, work)

    @property
    def feature_names(self) -> list[str]:
        return [feature.name for feature in self.features if feature.handlers.commands]

    async def figures(self, session: AsyncSession, period: Period) -> dict[str, Figures]:
        return {
            feature.name: await feature.metrics(session, period)
            for feature in self.features
            if feature.metrics is not None
        }

    async def member_actions(
        self, session: AsyncSession, period: Period
    ) -> dict[str, Sequence[MemberAction]]:
        return {
            feature.name: await feature.actions(session, period)
            for feature in self.features
            if feature.actions is not None
        }

    async def stored_about(
        self, session: AsyncSession, member: Identity
    ) -> dict[str, Sequence[str]]:
        stored: dict[str, Sequence[str]] = {}
        for feature in self.features:
            if feature.stored_about is None:
                continue
            kept = await feature.stored_about(session, member)
            if lines := self.templates.lines(kept.template, **kept.values):
                stored[feature.name] = lines
        return stored

    async def forget_feedback(self, session: AsyncSession, member: Identity) -> dict[str, int]:
        return {
            feature.name: await feature.forget_feedback(session, member)
            for feature in self.features
            if feature.forget_feedback is not None
        }

    def help_text(self, feature: str | None = None) -> str | None:
        if feature is None:
            return help_overview(self.features)
        found = find_feature(self.features, feature)
        return feature_help(found) if found is not None else None

    def attach(self, platform: Platform) -> None:
        self.platforms[platform.name] = platform
        self.dispatcher.add_platform(platform)

    async def start(self, *, dispatch: bool = True, schedule: bool = True) -> None:
        self._adapters_started += 1
        if self._adapters_started > 1:
            return
        schedule_housekeeping(self.scheduler)
        for feature in self.features:
            for tick in feature.ticks:
                self.scheduler.every(tick.name, tick.seconds, partial(tick.run, self))
        if schedule:
            self.scheduler.start()
            await self.scheduler.catch_up()
        if dispatch:
            self._dispatcher_task = asyncio.create_task(self.dispatcher.run())

    async def stop(self) -> None:
        if self._adapters_started > 1:
            self._adapters_started -= 1
            return
        self._adapters_started = 0
        await self.background.stop()
        await self.scheduler.shutdown()
        self.dispatcher.stop()
        if self._dispatcher_task is not None:
            await self._dispatcher_task
            self._dispatcher_task = None

    async def handle(self, inbound: Inbound) -> Reply | None:
        """Act on one inbound event and return the inline reply, if any."""
        inbound = clean_inbound(inbound)
        if inbound.kind == "command":
            return await self._command(inbound)
        if inbound.kind in {"button", "modal_submit"}:
            action = self.registry.actions.get(inbound.action_id or "")
            if action is None:
                return Reply.text("That button no longer does anything. Try `/kindred help`.")
            if action.admin and not await self._is_admin(inbound):
                return Reply.text("Only community admins can use that button.")
            return await self._run(inbound, action.handler, {}, f"action:{action.action_id}")
        replies = [
            await self._run(inbound, spec.handler, {}, f"event:{spec.name}")
            for spec in self.registry.events.get(inbound.kind, [])
        ]
        return combine_replies([reply for reply in replies if reply is not None])

    async def _command(self, inbound: Inbound) -> Reply | None:
        try:
            spec, args = self._resolve_command(inbound)
        except ArgumentError as error:
            return Reply.text(error.markup)
        if spec is None:
            return self._unknown_command(inbound.text)
        if spec.admin and not await self._is_admin(inbound):
            return Reply.text(f"Only community admins can use `/kindred {spec.name}`.")
        return await self._run(
            inbound, spec.handler, args, f"command:{spec.name}", prepare=spec.prepare
        )

    def _resolve_command(self, inbound: Inbound) -> tuple[CommandSpec | None, dict[str, Any]]:
        if inbound.command_path is not None:
            spec = self.registry.commands.get(inbound.command_path)
            return spec, validate(spec, inbound.options) if spec else {}
        words = split_words(inbound.text)
        if not words:
            words = split_words("help")
        spec, used = self.registry.find_command(words)
        if spec is None:
            return None, {}
        return spec, parse_words(spec, words[used:])

    def _unknown_command(self, text: str) -> Reply:
        words = text.split()
        feature = find_feature(self.features, words[0]) if words else None
        if feature is not None:
            if len(words) == 1:
                return Reply.text(feature_help(feature))
            missing = echo(" ".join(words[:2]))
            return Reply.text(f"There is no `/kindred {missing}`.\n{feature_help(feature)}")
        names = [spec.name for spec in self.registry.commands.values()]
        attempt = " ".join(words[:2]).lower()
        close = difflib.get_close_matches(attempt, names, n=1, cutoff=0.5)
        hint = f" Did you mean `/kindred {close[0]}`?" if close else ""
        return Reply.text(
            f"I don't know `/kindred {echo(text.strip())}`.{hint} Try `/kindred help`."
        )

    async def _is_admin(self, inbound: Inbound) -> bool:
        platform = self.platforms[inbound.platform]
        return await platform.is_admin(inbound.workspace_id, inbound.user_id)

    async def _run(
        self,
        inbound: Inbound,
        handler: Handler,
        args: dict[str, Any],
        what: str,
        prepare: Prepare | None = None,
    ) -> Reply | None:
        """Run `handler` in one transaction; a repeated delivery acts once. Its
        `prepare` step (platform reads) runs first, outside any transaction."""
        platform = self.platforms[inbound.platform]
        try:
            prepared = (
                await prepare(Preparation(inbound, args, platform, self)) if prepare else None
            )
            async with self.db.transaction() as session:
                if inbound.event_id is not None:
                    key = f"{inbound.platform}:{inbound.workspace_id}:{inbound.event_id}:{what}"
                    if not await processed_events.first_delivery(session, key):
                        log.info("skipping repeated delivery %s", key)
                        return None
                await members.ensure_community(session, inbound.platform, inbound.workspace_id)
                if inbound.user_id:
                    await members.ensure_member(
                        session,
                        inbound.platform,
                        inbound.workspace_id,
                        inbound.user_id,
                        inbound.user_name,
                    )
                context = Context(
                    inbound=inbound,
                    session=session,
                    outbox=Outbox(session, inbound.platform, inbound.workspace_id),
                    platform=platform,
                    runtime=self,
                    args=args,
                    prepared=prepared,
                )
                reply = await handler(context)
        except ArgumentError as refusal:
            return Reply.text(refusal.markup)
        except (CommandError, TemplateProblem) as refusal:
            return Reply.text(str(refusal))
        except Exception:
            reference = uuid.uuid4().hex[:8]
            log.exception("handler for %s failed (ref %s)", what, reference)
            return Reply.text(
                f"Something went wrong on our side and nothing was changed. (ref {reference})"
            )
        self.dispatcher.wake()
        return reply


def combine_replies(replies: list[Reply]) -> Reply | None:
    """Several features answer one event (e.g. App Home sections): one message, in
    registration order."""
    messages = [reply.message for reply in replies if reply.message is not None]
    if not messages:
        return None
    return Reply(
        message=Message(
            text="\n\n".join(message.text for message in messages),
            buttons=tuple(button for message in messages for button in message.buttons),
            mentions=tuple(user for message in messages for user in message.mentions),
        )
    )
