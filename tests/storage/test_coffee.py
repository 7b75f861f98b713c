"""Virtual coffee queries on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from bot.core.figures import MemberAction, Period
from bot.core.platform import Identity
from bot.services import coffee as coffee_service
from bot.services.coffee import actions as coffee_actions
from storage import coffee, members
from storage.coffee import CoffeeGroup, CoffeeGroupMember, CoffeeProgram, CoffeeRound
from storage.db import Database
from tests.driver import privacy_lines

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def new_program(
    channel: str = "C1", platform: str = "fake", workspace: str = "W1"
) -> CoffeeProgram:
    return CoffeeProgram(
        platform=platform,
        workspace_id=workspace,
        channel_id=channel,
        anchor_date=date(2026, 11, 30),
        next_round_at=NOW + timedelta(days=7),
        created_by="admin",
    )


async def add_program(db: Database, **fields: str) -> int:
    async with db.transaction() as session:
        program = new_program(**fields)
        session.add(program)
        await session.flush()
        assert program.id is not None
        return program.id


async def add_round(
    db: Database, program_id: int, occurrence: datetime, groups: list[list[tuple[str, str | None]]]
) -> int:
    """A round whose groups are lists of (user, answer)."""
    async with db.transaction() as session:
        round_ = CoffeeRound(program_id=program_id, occurrence=occurrence, ends_at=occurrence)
        session.add(round_)
        await session.flush()
        assert round_.id is not None
        for position, people in enumerate(groups):
            group = CoffeeGroup(
                round_id=round_.id,
                program_id=program_id,
                position=position,
                starter=f"starter {position}",
                proposer_user_id=people[0][0],
            )
            session.add(group)
            await session.flush()
            assert group.id is not None
            for user, answer in people:
                session.add(
                    CoffeeGroupMember(
                        group_id=group.id,
                        round_id=round_.id,
                        program_id=program_id,
                        user_id=user,
                        answer=answer,
                    )
                )
        return round_.id


async def test_one_program_per_channel(db: Database) -> None:
    await add_program(db)
    await add_program(db, channel="C2")
    await add_program(db, workspace="W2")
    with pytest.raises(IntegrityError):
        await add_program(db)
    async with db.sessions() as session:
        found = await coffee.program_in_channel(session, "fake", "W1", "C2")
        assert found is not None and found.channel_id == "C2"
        assert [p.channel_id for p in await coffee.community_programs(session, "fake", "W1")] == [
            "C1",
            "C2",
        ]


async def test_join_keeps_the_first_join_time_and_clears_pauses(db: Database) -> None:
    program_id = await add_program(db)
    later = NOW + timedelta(days=30)
    async with db.transaction() as session:
        membership, changed = await coffee.join(session, program_id, "ana", NOW)
        assert changed
        membership.active = False
        membership.paused = True
        membership.resume_at = later
    async with db.transaction() as session:
        membership, changed = await coffee.join(session, program_id, "ana", later)
        assert changed
        assert (membership.active, membership.paused, membership.resume_at) == (True, False, None)
        assert membership.first_joined_at == NOW and membership.joined_at == later
        _, again = await coffee.join(session, program_id, "ana", later)
        assert not again


async def test_first_joined_at_spans_the_communitys_programs(db: Database) -> None:
    first = await add_program(db)
    second = await add_program(db, channel="C2")
    elsewhere = await add_program(db, workspace="W2")
    async with db.transaction() as session:
        await coffee.join(session, second, "ana", NOW + timedelta(days=1))
        await coffee.join(session, first, "ana", NOW + timedelta(days=2))
        await coffee.join(session, first, "bob", NOW + timedelta(days=3))
        await coffee.join(session, elsewhere, "cy", NOW)
    async with db.sessions() as session:
        found = await coffee.first_joined_at(session, "fake", "W1", ["ana", "bob", "cy", "dee"])
        assert found == {"ana": NOW + timedelta(days=1), "bob": NOW + timedelta(days=3)}
        assert await coffee.first_joined_at(session, "fake", "W1", []) == {}


async def test_active_memberships_come_with_member_rows(db: Database) -> None:
    program_id = await add_program(db)
    async with db.transaction() as session:
        for user in ("ana", "bob"):
            await members.ensure_member(session, "fake", "W1", user, user.title())
            await coffee.join(session, program_id, user, NOW)
        membership = await coffee.get_membership(session, program_id, "bob")
        assert membership is not None
        membership.active = False
    async with db.sessions() as session:
        rows = await coffee.active_memberships(session, program_id)
    assert [(m.user_id, member.display_name) for m, member in rows] == [("ana", "Ana")]


async def test_due_queries_respect_time_and_platform(db: Database) -> None:
    slack = await add_program(db, platform="slack")
    fake = await add_program(db)
    async with db.transaction() as session:
        for program_id in (slack, fake):
            membership, _ = await coffee.join(session, program_id, "ana", NOW)
            membership.paused = True
            membership.resume_at = NOW + timedelta(days=1)
    round_id = await add_round(db, fake, NOW, [[("ana", None), ("bob", None)]])
    async with db.transaction() as session:
        round_ = await session.get(CoffeeRound, round_id)
        assert round_ is not None
        round_.reminder_due_at = NOW + timedelta(days=3)
    week = NOW + timedelta(days=7)
    async with db.sessions() as session:
        assert await coffee.programs_due(session, week - timedelta(seconds=1), ["fake"]) == []
        assert [p.id for p in await coffee.programs_due(session, week, ["fake"])] == [fake]
        resumes = await coffee.memberships_to_resume(session, week, ["fake"])
        assert [m.program_id for m in resumes] == [fake]
        assert await coffee.memberships_to_resume(session, NOW, ["fake", "slack"]) == []
        due = await coffee.rounds_due(session, "reminder_due_at", week, ["fake"])
        assert [r.id for r in due] == [round_id]
        assert await coffee.rounds_due(session, "followup_due_at", week, ["fake"]) == []


async def test_outcomes_history_and_partners(db: Database) -> None:
    program_id = await add_program(db)
    first = await add_round(
        db,
        program_id,
        NOW,
        [[("ana", "met"), ("bob", None)], [("cy", "didnt_happen"), ("dee", None)]],
    )
    second = await add_round(
        db,
        program_id,
        NOW + timedelta(days=7),
        [[("ana", None), ("cy", None), ("eve", None)], [("bob", "not_yet"), ("dee", None)]],
    )
    async with db.sessions() as session:
        outcomes = await coffee.round_outcomes(session, program_id)
        assert outcomes[first] == coffee.GroupOutcome(groups=2, met=1, answered=2)
        assert outcomes[second] == coffee.GroupOutcome(groups=2, met=0, answered=1)
        assert await coffee.distinct_participants(session, program_id) == 5
        rounds = await coffee.recent_rounds(session, program_id)
        assert [r.id for r in rounds] == [second, first]
        assert [r.id for r in await coffee.recent_rounds(session, program_id, limit=1)] == [second]
        grouped = await coffee.grouped_members(session, [first, second])
        assert sorted(sorted(users) for users in grouped[second].values()) == [
            ["ana", "cy", "eve"],
            ["bob", "dee"],
        ]
        partners = await coffee.last_partners(session, program_id, "ana")
        assert [(when, sorted(users)) for when, users in partners] == [
            (NOW + timedelta(days=7), ["cy", "eve"]),
            (NOW, ["bob"]),
        ]
        seen = await coffee.starters_seen(session, program_id, ["ana", "zed"])
        assert seen == {"ana": {"starter 0": 2}}
        assert await coffee.proposals_made(session, program_id) == {"ana": 2, "cy": 1, "bob": 1}
        unclosed = await coffee.unclosed_rounds(session, program_id)
        assert [r.id for r in unclosed] == [first, second]


async def test_blocks_are_recorded_once_and_removed(db: Database) -> None:
    async with db.transaction() as session:
        assert await coffee.add_block(session, "fake", "W1", "ana", "bob")
        assert not await coffee.add_block(session, "fake", "W1", "ana", "bob")
        assert await coffee.add_block(session, "fake", "W2", "ana", "bob")
    async with db.transaction() as session:
        assert await coffee.community_blocks(session, "fake", "W1") == [("ana", "bob")]
        assert await coffee.remove_block(session, "fake", "W1", "ana", "bob")
        assert not await coffee.remove_block(session, "fake", "W1", "ana", "bob")
    async with db.sessions() as session:
        assert await coffee.community_blocks(session, "fake", "W1") == []


async def test_period_figures_count_this_communitys_rounds_in_the_period(db: Database) -> None:
    program = await add_program(db)
    other_community = await add_program(db, workspace="W2")
    met, unanswered = [("ana", "met"), ("ben", None)], [("cy", None), ("dee", None)]
    inside = await add_round(db, program, NOW, [met, unanswered])
    before = await add_round(db, program, NOW - timedelta(days=7), [[("ana", "met"), ("cy", None)]])
    elsewhere = await add_round(db, other_community, NOW, [[("zed", "met"), ("yan", "met")]])
    empty = await add_round(db, program, NOW + timedelta(days=1), [])
    async with db.transaction() as session:
        for round_id, people in ((inside, 4), (before, 2), (elsewhere, 2), (empty, 0)):
            row = await session.get(CoffeeRound, round_id)
            assert row is not None
            row.participants, row.groups = people, people // 2
            row.total_pairs, row.repeat_pairs = people // 2, 1 if people else 0
    async with db.sessions() as session:
        figures = await coffee.period_figures(
            session, "fake", "W1", NOW - timedelta(days=1), NOW + timedelta(days=6)
        )
    assert figures == coffee.PeriodFigures(
        rounds=1,
        participants=4,
        distinct_participants=4,
        groups=2,
        groups_met=1,
        groups_answered=1,
        repeat_pairs=1,
        total_pairs=2,
    )


async def test_member_actions_are_first_joins_and_meetings_in_the_period(db: Database) -> None:
    program = await add_program(db)
    second = await add_program(db, channel="C2")
    elsewhere = await add_program(db, workspace="W2")
    async with db.transaction() as session:
        for program_id, user, joined in (
            (program, "ana", NOW),
            (second, "ana", NOW - timedelta(days=30)),  # her first join is before the period
            (program, "ben", NOW + timedelta(hours=1)),
            (elsewhere, "zed", NOW),
        ):
            await coffee.join(session, program_id, user, joined)
    await add_round(db, program, NOW, [[("ana", "met"), ("ben", "not_yet")]])
    async with db.transaction() as session:
        for row in (await session.execute(select(CoffeeGroupMember))).scalars():
            row.answered_at = NOW + timedelta(days=2)
    period = Period("fake", "W1", NOW - timedelta(days=1), NOW + timedelta(days=6))
    async with db.sessions() as session:
        actions = await coffee_actions(session, period)
    assert sorted(actions, key=lambda action: (action.kind, action.user_id)) == [
        MemberAction("ben", "coffee", NOW + timedelta(hours=1)),
        MemberAction("ana", "coffee_met", NOW + timedelta(days=2)),
    ]


async def test_privacy_lists_a_members_coffee_records_and_forgets_only_answers(
    db: Database,
) -> None:
    program = await add_program(db)
    async with db.transaction() as session:
        await coffee.join(session, program, "ana", NOW)
        await coffee.add_block(session, "fake", "W1", "ana", "ben")
    await add_round(db, program, NOW, [[("ana", "met"), ("ben", "met")]])
    await add_round(db, program, NOW + timedelta(days=7), [[("ana", None), ("cy", None)]])
    ana, ben = Identity("fake", "W1", "ana"), Identity("fake", "W1", "ben")
    async with db.transaction() as session:
        assert privacy_lines(await coffee_service.stored_about(session, ana)) == [
            "1 coffee program you joined",
            "2 coffee groups you were in",
            '1 "Did you meet?" answer',
            "1 member you asked not to be paired with",
        ]
        assert await coffee_service.forget_feedback(session, ana) == 1
        assert await coffee_service.forget_feedback(session, ana) == 0
    async with db.sessions() as session:
        after = privacy_lines(await coffee_service.stored_about(session, ana))
        assert '1 "Did you meet?" answer' not in after and "2 coffee groups you were in" in after
        # Ben's answer in the same group is his, and stays.
        assert '1 "Did you meet?" answer' in privacy_lines(
            await coffee_service.stored_about(session, ben)
        )
        assert (
            privacy_lines(await coffee_service.stored_about(session, Identity("fake", "W2", "ana")))
            == []
        )
