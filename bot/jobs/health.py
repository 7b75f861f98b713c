"""The health tick: each community's weekly report and pulse rounds that are due,
each occurrence claimed by exactly one replica (a crash rolls the claim back
with the work, and the next tick redoes it); and dashboard pages with member
names deleted once no link can show them."""

from __future__ import annotations

import logging
from datetime import datetime
from functools import partial

from bot.core.platform import PlatformError
from bot.core.runtime import Runtime
from bot.services.health import draw, run_weekly_report
from bot.services.health_dashboard import PageOf, forget_named_pages, keep
from bot.services.health_pulse import run_round
from storage import health as store

log = logging.getLogger(__name__)

TICK = "health.tick"
TICK_SECONDS = 60


async def tick(runtime: Runtime, now: datetime) -> None:
    await forget_named_pages(runtime, now)
    async with runtime.db.sessions() as session:
        reports = [
            (s.id, s.platform, s.workspace_id, s.report_next_at)
            for s in await store.reports_due(session, now)
        ]
        pulses = [
            (s.id, s.platform, s.workspace_id, s.pulse_channel_id, s.pulse_next_at)
            for s in await store.pulses_due(session, now)
        ]
    for settings_id, platform, workspace_id, due in reports:
        assert settings_id is not None and due is not None
        # Drawn before the claim's transaction opens (a replica that loses the claim
        # has drawn for nothing, which is cheaper than drawing inside a transaction).
        drawn = await draw(runtime, platform, workspace_id, "week")
        # The week's page too, for a link sent later to show at once on any replica.
        await keep(runtime, PageOf(platform, workspace_id, "week"), drawn)
        await runtime.claims.run_claimed(
            f"health.weekly:{platform}:{workspace_id}",
            due,
            partial(run_weekly_report, runtime, settings_id, due, drawn),
        )
    for settings_id, platform, workspace_id, channel_id, due in pulses:
        assert settings_id is not None and due is not None
        chat = runtime.platforms.get(platform)
        if chat is None:
            continue
        try:
            # The audience is read before the claim's transaction opens: no platform
            # call inside a transaction.
            audience = await chat.list_members(workspace_id, channel_id)
        except PlatformError as error:
            log.warning(
                "pulse for %s:%s waits: cannot list members: %s", platform, workspace_id, error
            )
            continue
        await runtime.claims.run_claimed(
            f"health.pulse:{platform}:{workspace_id}",
            due,
            partial(run_round, runtime.templates, settings_id, due, audience),
        )


async def next_due(runtime: Runtime, now: datetime) -> datetime | None:
    async with runtime.db.sessions() as session:
        return await store.next_scheduled_after(session, now)
