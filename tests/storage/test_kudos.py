"""Kudos storage on SQLite and PostgreSQL: one kudos per reaction even when two
deliveries race, the allowance count, the status window, withdrawals by message,
one grant per member, board opt-outs, and the feature's hooks over real rows."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from bot.core.figures import Period
from bot.core.platform import Identity
from bot.services import kudos as service
from storage import kudos as store
from storage.db import Database
from storage.kudos import ACTIVE, PENDING, REVOKED, WITHDRAWN, Kudos, KudosSettings
from storage.kudos import RecognisedContributor as Recognition
from tests.driver import privacy_lines

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def kudos(
    giver: str,
    receiver: str,
    *,
    at: datetime = NOW,
    status: str = ACTIVE,
    key: str | None = None,
    message: str | None = None,
    reason: str | None = "for the help with it",
) -> Kudos:
    return Kudos(
        platform="fake",
        workspace_id="W1",
        giver_id=giver,
        receiver_id=receiver,
        reason=reason,
        source="reaction" if key else "command",
        source_key=key,
        channel_id="C1" if message else None,
        message_id=message,
        status=status,
        created_at=at,
    )


async def add(db: Database, *rows: Kudos) -> list[int]:
    ids = []
    async with db.transaction() as session:
        for row in rows:
            added = await store.add_kudos(session, row)
            assert added is not None and added.id is not None
            ids.append(added.id)
    return ids


async def test_one_kudos_per_reaction_even_when_two_deliveries_race(db: Database) -> None:
    async def try_add() -> Kudos | None:
        async with db.transaction() as session:
            return await store.add_kudos(session, kudos("U1", "U2", key="reaction:C1:m1:U1"))

    results = await asyncio.gather(try_add(), try_add())
    assert sum(result is not None for result in results) == 1
    async with db.sessions() as session:
        found = await store.by_source(session, "fake", "W1", "reaction:C1:m1:U1")
        assert found is not None and found.giver_id == "U1"
        # Commands have no source key: any number of them.
    await add(db, kudos("U1", "U2"), kudos("U1", "U2"))


async def test_allowance_window_and_listing_queries(db: Database) -> None:
    await add(
        db,
        kudos("U1", "U2", at=NOW - timedelta(hours=2)),
        kudos("U1", "U3", at=NOW - timedelta(hours=1), status=WITHDRAWN),
        kudos("U1", "U4", at=NOW - timedelta(minutes=5), status=REVOKED),
        kudos("U1", "U2", at=NOW - timedelta(days=2)),
        kudos("U5", "U2", at=NOW - timedelta(days=400)),
        kudos("U6", "U2", at=NOW, status=PENDING, reason=None),
    )
    async with db.sessions() as session:
        # Withdrawn kudos used their place in the day; revoked ones give it back.
        assert await store.given_since(session, "fake", "W1", "U1", NOW - timedelta(days=1)) == 2
        standing = await store.standing(session, "fake", "W1", NOW - timedelta(days=365))
        assert [(row.giver_id, row.receiver_id) for row in standing] == [
            ("U1", "U2"),
            ("U1", "U2"),
        ]
        until = await store.standing(
            session, "fake", "W1", NOW - timedelta(days=3), NOW - timedelta(days=1)
        )
        assert len(until) == 1
        listed = await store.listed(session, "fake", "W1", receiver_id="U2", limit=10)
        assert [row.created_at for row in listed] == [
            NOW - timedelta(hours=2),
            NOW - timedelta(days=2),
            NOW - timedelta(days=400),
        ]
        assert await store.receivers_since(session, "fake", "W1", NOW - timedelta(days=30)) == [
            "U2"
        ]
        assert await store.counts_about(session, "fake", "W1", "U2") == (0, 4)
        period = await store.in_period(
            session, "fake", "W1", NOW - timedelta(days=1), NOW + timedelta(seconds=1)
        )
        assert len(period) == 4


async def test_withdrawing_finds_the_kudos_of_one_message(db: Database) -> None:
    await add(
        db,
        kudos("U1", "U2", key="reaction:C1:m1:U1", message="m1"),
        kudos("U3", "U2", key="reaction:C1:m1:U3", message="m1", status=PENDING),
        kudos("U4", "U2", key="reaction:C1:m1:U4", message="m1", status=WITHDRAWN),
        kudos("U1", "U2", key="reaction:C1:m2:U1", message="m2"),
    )
    async with db.sessions() as session:
        rows = await store.on_message(session, "fake", "W1", "C1", "m1")
    assert sorted(row.giver_id for row in rows) == ["U1", "U3"]


async def test_settings_grants_and_opt_outs(db: Database) -> None:
    async def settings() -> KudosSettings:
        async with db.transaction() as session:
            return await service.settings_for(session, "fake", "W1", "Europe/Berlin")

    first, second = await asyncio.gather(settings(), settings())
    assert first.id == second.id and first.timezone == "Europe/Berlin"
    assert first.categories == ["helpful answer", "great share", "welcomed a newcomer"]
    async with db.transaction() as session:
        assert [row.id for row in await store.all_settings(session)] == [first.id]
        grant = Recognition(platform="fake", workspace_id="W1", user_id="U2", granted_at=NOW)
        assert await store.add_recognition(session, grant) is not None
        again = Recognition(platform="fake", workspace_id="W1", user_id="U2", granted_at=NOW)
        assert await store.add_recognition(session, again) is None
        assert [row.user_id for row in await store.recognised(session, "fake", "W1")] == ["U2"]
        assert await store.set_opt_out(session, "fake", "W1", "U2", out=True)
        assert not await store.set_opt_out(session, "fake", "W1", "U2", out=True)
    async with db.transaction() as session:
        assert await store.opted_out(session, "fake", "W1") == {"U2"}
        assert await store.set_opt_out(session, "fake", "W1", "U2", out=False)
    async with db.sessions() as session:
        assert await store.opted_out(session, "fake", "W1") == set()
        current = await store.recognition(session, "fake", "W1", "U2")
        assert current is not None and current.active


async def test_hooks_over_both_databases(db: Database) -> None:
    await add(
        db,
        kudos("U1", "U2"),
        kudos("U2", "U1"),
        kudos("U3", "U2", reason=None),
        kudos("U4", "U2", status=WITHDRAWN),
    )
    async with db.transaction() as session:
        await store.add_recognition(
            session, Recognition(platform="fake", workspace_id="W1", user_id="U9", granted_at=NOW)
        )
    period = Period("fake", "W1", NOW - timedelta(days=1), NOW + timedelta(days=1))
    async with db.sessions() as session:
        figures = await service.metrics(session, period)
        actions = await service.actions(session, period)
        about = privacy_lines(await service.stored_about(session, Identity("fake", "W1", "U2")))
    assert figures["kudos"] == 3 and figures["givers"] == 3 and figures["receivers"] == 2
    assert figures["with_reason_share"] == 2 / 3 and figures["withdrawn"] == 1
    # U1 and U2 thank only each other: a reciprocal pair.
    assert figures["flagged_pairs"] == 1 and figures["recognised_contributors"] == 1
    assert sorted(action.user_id for action in actions) == ["U1", "U2", "U3"]
    assert {action.kind for action in actions} == {"kudos"}
    assert about == [
        "1 kudos you gave, with their reasons",
        "3 kudos you received, with their reasons",
    ]


async def test_received_summary_counts_givers_and_categories(db: Database) -> None:
    rows = [
        kudos("U1", "U2"),
        kudos("U1", "U2"),
        kudos("U3", "U2"),
        kudos("U4", "U2", status=WITHDRAWN),
        kudos("U5", "U9"),
    ]
    for row, category in zip(
        rows, ("great share", "helpful answer", "great share", "x", "y"), strict=True
    ):
        row.category = category
    await add(db, *rows)
    async with db.sessions() as session:
        summary = await store.received_summary(session, "fake", "W1", "U2")
        nobody = await store.received_summary(session, "fake", "W1", "U7")
    assert (summary.kudos, summary.givers) == (3, 2)
    assert summary.categories == [("great share", 2), ("helpful answer", 1)]
    assert (nobody.kudos, nobody.givers, nobody.categories) == (0, 0, [])
