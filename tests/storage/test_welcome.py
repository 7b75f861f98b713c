from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import select

from bot.commands.welcome import feature
from bot.core.figures import MemberAction, Period
from bot.core.platform import Identity
from storage import coffee, members
from storage import welcome as welcome_rows
from storage.db import Database
from storage.welcome import Welcome
from tests.driver import contribution_words, privacy_lines

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


async def arrive(db: Database, user: str, due: datetime | None = None) -> int | None:
    async with db.transaction() as session:
        return await welcome_rows.record_arrival(
            session,
            "fake",
            "W1",
            user,
            trigger="workspace",
            joined_at=NOW,
            welcome_due_at=due,
            welcomed_at=None if due else NOW,
        )


async def test_an_arrival_is_recorded_once_even_when_raced(db: Database) -> None:
    results = await asyncio.gather(*(arrive(db, "UNEW") for _ in range(4)))
    assert len([row_id for row_id in results if row_id is not None]) == 1
    assert await arrive(db, "UNEW") is None
    async with db.sessions() as session:
        [row] = (await session.execute(select(Welcome))).scalars()
    assert (row.user_id, row.welcomed_at, row.welcome_due_at) == ("UNEW", NOW, None)


async def test_settings_default_until_saved_then_one_row(db: Database) -> None:
    async with db.transaction() as session:
        defaults = await welcome_rows.get_settings(session, "fake", "W1")
        assert defaults.id is None and defaults.enabled and defaults.delay_seconds == 0
        stored = await welcome_rows.ensure_settings(session, "fake", "W1")
        stored.intro_channel = "CINTRO"
        again = await welcome_rows.ensure_settings(session, "fake", "W1")
        assert again.id == stored.id
    async with db.sessions() as session:
        loaded = await welcome_rows.get_settings(session, "fake", "W1")
    assert loaded.intro_channel == "CINTRO" and loaded.visit_channels == []


async def test_due_queries_return_only_what_is_owed(db: Database) -> None:
    await arrive(db, "UNOW")
    soon = await arrive(db, "USOON", NOW + timedelta(hours=1))
    await arrive(db, "ULATER", NOW + timedelta(days=1))
    async with db.transaction() as session:
        assert await welcome_rows.due_welcomes(session, NOW, 10) == []
        due = await welcome_rows.due_welcomes(session, NOW + timedelta(hours=2), 10)
        assert due == [(soon, NOW + timedelta(hours=1))]
        row = await session.get(Welcome, soon)
        assert row is not None
        row.buddy_checkin_due_at = NOW + timedelta(days=7)
    async with db.sessions() as session:
        assert await welcome_rows.due_buddy_checkins(session, NOW + timedelta(days=6), 10) == []
        assert await welcome_rows.due_buddy_checkins(session, NOW + timedelta(days=7), 10) == [
            (soon, NOW + timedelta(days=7))
        ]


async def test_the_first_greeter_wins(db: Database) -> None:
    row_id = await arrive(db, "UNEW")
    assert row_id is not None

    async def click(greeter: str) -> bool:
        async with db.transaction() as session:
            return await welcome_rows.claim_greeting(session, row_id, greeter, NOW)

    wins = await asyncio.gather(*(click(f"UG{n}") for n in range(5)))
    assert sorted(wins) == [False, False, False, False, True]
    async with db.sessions() as session:
        row = await session.get(Welcome, row_id)
    assert row is not None and row.greeter_user_id == f"UG{wins.index(True)}"


async def test_volunteers_loads_and_waiting_newcomers(db: Database) -> None:
    async with db.transaction() as session:
        await members.ensure_community(session, "fake", "W1")
        for user in ("UA", "UB", "UBOT"):
            await members.ensure_member(session, "fake", "W1", user, is_bot=user == "UBOT")
            await welcome_rows.set_buddy_volunteer(session, "fake", "W1", user, active=True)
        await welcome_rows.set_buddy_volunteer(session, "fake", "W1", "UB", active=False)
        assert await welcome_rows.is_buddy_volunteer(session, "fake", "W1", "UA")
        assert not await welcome_rows.is_buddy_volunteer(session, "fake", "W1", "UB")
        volunteers = await welcome_rows.volunteer_members(session, "fake", "W1")
        assert [member.user_id for member in volunteers] == ["UA"]
    old, recent, waiting = [await arrive(db, user) for user in ("UOLD", "URECENT", "UWAIT")]
    async with db.transaction() as session:
        for row_id, buddied in ((old, NOW - timedelta(days=40)), (recent, NOW)):
            row = await session.get(Welcome, row_id)
            assert row is not None
            row.buddy_user_id, row.buddied_at = "UA", buddied
        row = await session.get(Welcome, waiting)
        assert row is not None
        row.buddy_requested_at = NOW
    async with db.sessions() as session:
        since = NOW - timedelta(days=30)
        assert await welcome_rows.buddy_loads(session, "fake", "W1", since) == {"UA": 1}
        queue = await welcome_rows.waiting_for_buddy(session, "fake", "W1", since)
        assert [row.user_id for row in queue] == ["UWAIT"]
        assert await welcome_rows.waiting_for_buddy(session, "fake", "W1", NOW + timedelta(1)) == []


def day(month: int, day_of_month: int, hour: int = 9) -> datetime:
    return datetime(2026, month, day_of_month, hour, tzinfo=UTC)


async def test_metrics_count_one_period_of_one_community(db: Database) -> None:
    def newcomer(user: str, joined: datetime, workspace: str = "W1", **steps: Any) -> Welcome:
        platform = steps.pop("platform", "fake")
        return Welcome(
            platform=platform,
            workspace_id=workspace,
            user_id=user,
            joined_at=joined,
            welcomed_at=steps.pop("welcomed", joined),
            **steps,
        )

    async with db.transaction() as session:
        session.add_all(
            [
                # Their first 14 days close inside the period: the activation cohort.
                newcomer("UINTRO", day(10, 20), intro_posted_at=day(10, 22)),
                newcomer("UIDLE", day(10, 21)),
                newcomer("UCOFFEE", day(10, 19)),
                # Arrives in the period and takes every step in it.
                newcomer(
                    "UBUSY",
                    day(11, 2),
                    intro_posted_at=day(11, 3),
                    buddy_user_id="UVOL",
                    buddied_at=day(11, 3),
                ),
                # Arrives late on the last day; the delayed welcome is after the end.
                newcomer("ULATE", day(11, 7, 23), welcomed=None, welcome_due_at=day(11, 8, 1)),
                # An old newcomer whose buddy is nudged at the period's first instant.
                newcomer(
                    "UOLD",
                    day(10, 1),
                    buddy_user_id="UVOL",
                    buddied_at=day(10, 25),
                    buddy_nudged_at=day(11, 1, 0),
                ),
                # At the end (exclusive), another workspace, another platform: not counted.
                newcomer("UNEXT", day(11, 8, 0), intro_posted_at=day(11, 8, 0)),
                newcomer("UELSE", day(11, 3), workspace="W2", intro_posted_at=day(11, 3)),
                newcomer("UDISC", day(11, 3), platform="discord", intro_posted_at=day(11, 3)),
            ]
        )
        program = coffee.CoffeeProgram(
            platform="fake",
            workspace_id="W1",
            channel_id="CCOFFEE",
            anchor_date=date(2026, 10, 5),
            next_round_at=day(10, 5),
            created_by="UADMIN",
        )
        session.add(program)
        await session.flush()
        assert program.id is not None
        await coffee.join(session, program.id, "UCOFFEE", day(10, 30))
        # Joined coffee after their 14 days: no activation for them.
        await coffee.join(session, program.id, "UIDLE", day(11, 6))
    assert feature.metrics is not None
    async with db.sessions() as session:
        figures = await feature.metrics(session, Period("fake", "W1", day(11, 1, 0), day(11, 8, 0)))
        empty = await feature.metrics(session, Period("fake", "W9", day(11, 1, 0), day(11, 8, 0)))
    assert dict(figures) == {
        "newcomers": 2,
        "welcomed": 1,
        "intros_posted": 1,
        "buddies_assigned": 1,
        "buddy_checkins_done": 1,
        "activation_cohort": 3,
        "activated": 2,
        "activation_rate": 2 / 3,
    }
    assert empty["newcomers"] == 0 and empty["activation_rate"] is None


async def test_member_actions_are_intros_buddies_and_greetings_in_the_period(
    db: Database,
) -> None:
    async with db.transaction() as session:
        session.add_all(
            [
                Welcome(
                    platform="fake",
                    workspace_id="W1",
                    user_id="UNEW",
                    joined_at=day(11, 2),
                    intro_posted_at=day(11, 3),
                    buddy_user_id="UVOL",
                    buddied_at=day(11, 4),
                    greeter_user_id="UGREET",
                    greeted_at=day(11, 2, 10),
                ),
                # Steps before the period, and another workspace's: none count.
                Welcome(
                    platform="fake",
                    workspace_id="W1",
                    user_id="UOLD",
                    joined_at=day(10, 1),
                    intro_posted_at=day(10, 2),
                ),
                Welcome(
                    platform="fake",
                    workspace_id="W2",
                    user_id="UELSE",
                    joined_at=day(11, 3),
                    intro_posted_at=day(11, 3),
                ),
            ]
        )
    assert feature.actions is not None
    async with db.sessions() as session:
        actions = await feature.actions(session, Period("fake", "W1", day(11, 1), day(11, 8)))
    assert sorted(actions, key=lambda action: action.at) == [
        MemberAction(
            "UGREET",
            "welcome_greeted",
            day(11, 2, 10),
            contribution=True,
        ),
        MemberAction("UNEW", "intro", day(11, 3)),
        MemberAction("UNEW", "buddy", day(11, 4)),
        MemberAction(
            "UVOL",
            "welcome_buddy",
            day(11, 4),
            contribution=True,
        ),
    ]
    assert contribution_words("welcome_greeted") == "greeted a newcomer"
    assert contribution_words("welcome_buddy") == "became a newcomer's welcome buddy"


async def test_privacy_lists_the_arrival_record_and_buddy_volunteering(db: Database) -> None:
    await arrive(db, "UNEW")
    async with db.transaction() as session:
        await welcome_rows.set_buddy_volunteer(session, "fake", "W1", "UVOL", active=True)
    assert feature.stored_about is not None
    async with db.sessions() as session:
        assert privacy_lines(
            await feature.stored_about(session, Identity("fake", "W1", "UNEW"))
        ) == ["when you joined, and which welcome steps you took (intro, buddy)"]
        assert privacy_lines(
            await feature.stored_about(session, Identity("fake", "W1", "UVOL"))
        ) == ["that you volunteer as a welcome buddy"]
        assert (
            privacy_lines(await feature.stored_about(session, Identity("fake", "W1", "UNONE")))
            == []
        )
