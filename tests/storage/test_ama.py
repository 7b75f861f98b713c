from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.exc import IntegrityError

from bot.core.figures import MemberAction, Period
from bot.core.platform import Identity
from bot.services import ama as ama_service
from bot.services.ama import actions as ama_actions
from storage import ama as store
from storage import outbox as outbox_rows
from storage.ama import Ama
from storage.db import Database
from tests.driver import contribution_words, privacy_lines

START = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)


async def make_ama(db: Database, channel: str = "C1", **overrides: object) -> int:
    values: dict[str, object] = {
        "next_event_at": START - timedelta(days=1),
        "state": "collecting",
    } | overrides
    async with db.transaction() as session:
        ama = Ama(
            platform="fake",
            workspace_id="W1",
            title="Scaling support",
            host_user_id="ana",
            channel_id=channel,
            created_by="alice",
            timezone="UTC",
            announce_at=START - timedelta(days=3),
            starts_at=START,
            ends_at=START + timedelta(hours=1),
            **values,
        )
        session.add(ama)
        await session.flush()
        assert ama.id is not None
        return ama.id


async def make_question(db: Database, ama_id: int, author: str = "bob") -> int:
    async with db.transaction() as session:
        ama = await store.get_ama_by_id(session, ama_id, lock=True)
        assert ama is not None
        question = await store.add_question(
            session,
            ama,
            author_user_id=author,
            text="How do you scale support?",
            anonymous=False,
            status="approved",
        )
        store.assign_number(ama, question)
        assert question.id is not None
        return question.id


async def test_votes_count_once_per_member_and_concurrently(db: Database) -> None:
    question_id = await make_question(db, await make_ama(db))

    async def vote(user: str) -> int | None:
        async with db.transaction() as session:
            return await store.add_vote(session, question_id, user)

    counts = await asyncio.gather(*(vote(f"U{n}") for n in range(8)), vote("U0"))
    assert sorted(count for count in counts if count is not None) == list(range(1, 9))
    assert counts.count(None) == 1
    async with db.transaction() as session:
        assert await store.remove_vote(session, question_id, "U3") == 7
        assert await store.remove_vote(session, question_id, "U3") is None
        found = await store.get_question(session, "fake", "W1", question_id)
        assert found is not None and found[0].votes == 7
        assert "U3" not in (await store.voters(session, [question_id]))[question_id]


async def test_status_changes_only_from_the_expected_state(db: Database) -> None:
    question_id = await make_question(db, await make_ama(db))
    async with db.transaction() as session:
        assert await store.change_status(session, question_id, {"approved"}, "answering")
        assert not await store.change_status(session, question_id, {"approved"}, "answering")
        assert await store.change_status(session, question_id, {"answering"}, "answered")
    async with db.transaction() as session:
        found = await store.get_question(session, "fake", "W1", question_id)
        assert found is not None and found[0].status == "answered"
        # Another community cannot reach it by id.
        assert await store.get_question(session, "fake", "W2", question_id) is None


async def test_question_numbers_are_per_ama_and_unique(db: Database) -> None:
    first, second = await make_ama(db), await make_ama(db, channel="C2")
    await make_question(db, first)
    await make_question(db, first)
    await make_question(db, second)
    async with db.transaction() as session:
        numbers = [q.number for q in await store.questions(session, first)]
        assert numbers == [1, 2]
        assert [q.number for q in await store.questions(session, second)] == [1]
    with pytest.raises(IntegrityError):
        async with db.transaction() as session:
            ama = await store.get_ama_by_id(session, first)
            assert ama is not None
            duplicate = await store.add_question(
                session, ama, author_user_id="x", text="again?", anonymous=False, status="approved"
            )
            duplicate.number = 1
            await session.flush()


async def test_due_open_and_overlapping_queries(db: Database) -> None:
    first = await make_ama(db)
    second = await make_ama(db, channel="C2", next_event_at=START + timedelta(hours=1))
    await make_ama(db, channel="C3", state="closed", next_event_at=None)
    async with db.transaction() as session:
        due = await store.due_amas(session, START)
        assert [ama.id for ama in due] == [first]
        assert [a.id for a in await store.open_amas(session, "fake", "W1")] == [first, second]
        assert await store.open_amas(session, "fake", "W2") == []
        clash = await store.overlapping(
            session, "fake", "W1", "C1", START + timedelta(minutes=30), START + timedelta(hours=2)
        )
        assert clash is not None and clash.id == first
        after = await store.overlapping(
            session, "fake", "W1", "C1", START + timedelta(hours=1), START + timedelta(hours=2)
        )
        assert after is None
        closed = await store.latest_in_channel(session, "fake", "W1", "C3")
        assert closed is not None and closed.state == "closed"


async def test_queued_edits_take_new_content_until_leased(db: Database) -> None:
    async with db.transaction() as session:
        row_id = await outbox_rows.enqueue(
            session, platform="fake", workspace_id="W1", kind="update", payload={"text": "1"}
        )
        assert await store.sent_refs(session, [row_id]) == {}
    async with db.transaction() as session:
        assert await store.replace_queued_payload(session, row_id, {"text": "2"})
    claimed = await outbox_rows.claim_due(
        db, owner="dispatcher", platforms=["fake"], limit=10, lease=timedelta(seconds=60)
    )
    assert [item.row.payload for item in claimed] == [{"text": "2"}]
    async with db.transaction() as session:
        assert not await store.replace_queued_payload(session, row_id, {"text": "3"})
    await outbox_rows.mark_sent(db, [(row_id, {"channel_id": "C1", "message_id": "m1"})])
    async with db.transaction() as session:
        assert not await store.replace_queued_payload(session, row_id, {"text": "3"})
        refs = await store.sent_refs(session, [row_id])
        assert refs == {row_id: {"channel_id": "C1", "message_id": "m1"}}


async def test_period_figures_count_this_communitys_questions_in_the_period(db: Database) -> None:
    closed = await make_ama(db, state="closed", closed_at=START + timedelta(hours=1))
    other = await make_ama(db, channel="C2")
    async with db.transaction() as session:
        answered = store.AmaQuestion(
            ama_id=closed,
            author_user_id="bo",
            text="How?",
            status="answered",
            created_at=START,
            resolved_at=START + timedelta(minutes=30),
        )
        skipped = store.AmaQuestion(
            ama_id=closed, author_user_id="bo", text="Why?", status="skipped", created_at=START
        )
        draft = store.AmaQuestion(
            ama_id=other, author_user_id="cy", text="Hm?", status="draft", created_at=START
        )
        early = store.AmaQuestion(
            ama_id=other,
            author_user_id="di",
            text="Old?",
            status="approved",
            created_at=START - timedelta(days=9),
        )
        session.add_all([answered, skipped, draft, early])
        await session.flush()
        assert answered.id is not None and early.id is not None
        session.add(store.AmaVote(question_id=answered.id, user_id="cy", created_at=START))
        session.add(
            store.AmaVote(question_id=early.id, user_id="cy", created_at=START - timedelta(days=9))
        )
    async with db.sessions() as session:
        figures = await store.period_figures(
            session, "fake", "W1", START - timedelta(days=1), START + timedelta(days=1)
        )
        elsewhere = await store.period_figures(
            session, "fake", "W2", START - timedelta(days=1), START + timedelta(days=1)
        )
    assert figures == store.PeriodFigures(
        amas_held=1, questions_asked=2, questions_answered=1, distinct_askers=1, votes=1
    )
    assert elsewhere == store.PeriodFigures(0, 0, 0, 0, 0)


async def test_member_actions_are_askers_hosts_answers_and_voters_in_the_period(
    db: Database,
) -> None:
    ama_id = await make_ama(db)
    async with db.transaction() as session:
        answered = store.AmaQuestion(
            ama_id=ama_id,
            author_user_id="bo",
            text="How?",
            status="answered",
            created_at=START,
            resolved_at=START + timedelta(minutes=30),
        )
        rejected = store.AmaQuestion(
            ama_id=ama_id, author_user_id="cy", text="No", status="rejected", created_at=START
        )
        late = store.AmaQuestion(
            ama_id=ama_id,
            author_user_id="di",
            text="Later?",
            status="approved",
            created_at=START + timedelta(days=3),
        )
        session.add_all([answered, rejected, late])
        await session.flush()
        assert answered.id is not None
        session.add(store.AmaVote(question_id=answered.id, user_id="cy", created_at=START))
    period = Period("fake", "W1", START - timedelta(days=1), START + timedelta(days=1))
    async with db.sessions() as session:
        actions = await ama_actions(session, period)
        elsewhere = await ama_actions(session, replace(period, workspace_id="W2"))
    assert sorted(actions, key=lambda action: action.kind) == [
        MemberAction(
            "ana",
            "ama_answer",
            START + timedelta(minutes=30),
            contribution=True,
        ),
        MemberAction("cy", "ama_vote", START),
        MemberAction("bo", "question", START),
    ]
    assert contribution_words("ama_answer") == "answered an AMA question as host"
    assert elsewhere == []


async def test_privacy_counts_a_members_questions_and_votes(db: Database) -> None:
    ama_id = await make_ama(db)
    question = await make_question(db, ama_id, author="bo")
    async with db.transaction() as session:
        await store.add_vote(session, question, "cy")
    async with db.sessions() as session:
        assert privacy_lines(
            await ama_service.stored_about(session, Identity("fake", "W1", "bo"))
        ) == ["1 AMA question you asked"]
        assert privacy_lines(
            await ama_service.stored_about(session, Identity("fake", "W1", "cy"))
        ) == ["1 AMA upvote"]
        assert (
            privacy_lines(await ama_service.stored_about(session, Identity("fake", "W2", "bo")))
            == []
        )
