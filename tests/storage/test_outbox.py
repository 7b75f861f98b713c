"""Outbox rows queued many at once (`enqueue_many`), on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import select

from bot.core.outbox import GroupMessage, Outbox
from bot.core.platform import Button, Message
from storage import outbox as outbox_rows
from storage.db import Database
from storage.models import OutboxMessage


async def test_many_rows_keep_their_order_and_keys_stay_single(db: Database) -> None:
    async with db.transaction() as session:
        single = await outbox_rows.enqueue(
            session,
            platform="fake",
            workspace_id="W1",
            kind="dm",
            target="ana",
            payload={"text": "first"},
            dedupe_key="k-7",
        )
        rows = [("dm", f"user{n}", {}, {"text": f"hello {n}"}, f"k-{n}") for n in range(1200)]
        ids = await outbox_rows.enqueue_many(session, platform="fake", workspace_id="W1", rows=rows)
        again = await outbox_rows.enqueue_many(
            session, platform="fake", workspace_id="W1", rows=rows[:3]
        )
    assert len(ids) == 1200 and len(set(ids)) == 1200
    assert ids[7] == single, "an existing key yields its row, not a second message"
    assert again == ids[:3]
    async with db.sessions() as session:
        stored = {row.id: row for row in (await session.execute(select(OutboxMessage))).scalars()}
    assert len(stored) == 1200
    assert [stored[row_id].target for row_id in ids[:3]] == ["user0", "user1", "user2"]
    assert stored[ids[7]].payload == {"text": "first"}
    assert {row.status for row in stored.values()} == {"pending"}


async def test_outbox_dms_and_groups_queue_what_dm_and_group_would(db: Database) -> None:
    message = Message("Meet <@ana> and <@bob>", (Button("Go", "x.go", "1"),), mentions=("ana",))
    async with db.transaction() as session:
        outbox = Outbox(session, "fake", "W1")
        (group_id,) = await outbox.groups(
            [GroupMessage(["ana", "bob"], message, key="g1", channel_id="C1", title="Pair")]
        )
        (dm_id,) = await outbox.dms([("ana", message, "d1")])
        assert await outbox.group(["ana", "bob"], message, key="g1") == group_id
        assert await outbox.dm("ana", message, key="d1") == dm_id
    async with db.sessions() as session:
        group = await session.get(OutboxMessage, group_id)
        dm = await session.get(OutboxMessage, dm_id)
    assert group is not None and dm is not None
    assert (group.kind, group.details) == (
        "group",
        {"user_ids": ["ana", "bob"], "channel_id": "C1", "title": "Pair"},
    )
    assert (dm.kind, dm.target) == ("dm", "ana")
    assert dm.payload["buttons"] == [["Go", "x.go", "1", "default"]]
    assert dm.payload["mentions"] == ["ana"]
