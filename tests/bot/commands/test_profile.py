from __future__ import annotations

from sqlalchemy import select

from storage.models import Member
from tests.driver import Community


async def stored(community: Community, user: str = "U1") -> Member:
    async with community.kindred.db.sessions() as session:
        query = select(Member).where(Member.user_id == user)
        return (await session.execute(query)).scalar_one()


async def test_set_and_show(community: Community) -> None:
    text = await community.say(
        'profile set company=Acme timezone=europe/berlin topics="journey mapping, NPS, nps" '
        'seniority=Lead role="Head of CX"',
        "U1",
    )
    assert text.startswith("Saved your company, role, seniority, timezone, topics.")
    member = await stored(community)
    assert (member.company, member.timezone, member.seniority) == ("Acme", "Europe/Berlin", "lead")
    assert member.topics == ["journey mapping", "NPS"]
    shown = await community.say("profile show <@U1>", "U2")
    assert "• Head of CX at Acme" in shown
    assert "Europe/Berlin (now 10:00)" in shown


async def test_invalid_values_store_nothing(community: Community) -> None:
    async def say(text: str) -> str:
        return await community.say(text, "U1")

    await say("profile set company=Acme")
    text = await say("profile set company=Globex timezone=Europe/Berlim")
    assert "`Europe/Berlim` is not a time zone I know. Did you mean Europe/Berlin" in text
    assert (await stored(community)).company == "Acme"
    long_bio = "x" * 501
    assert "the limit is 500" in await say(f"profile set bio={long_bio}")
    many = ",".join(f"t{n}" for n in range(11))
    assert "pick your top 10" in await say(f"profile set topics={many}")
    assert "Tell me what to set" in await say("profile set")
    assert "must be one of" in await say("profile set seniority=wizard")
    assert (await stored(community)).company == "Acme"


async def test_clear_one_field_or_all(community: Community) -> None:
    async def say(text: str) -> str:
        return await community.say(text, "U1")

    await say("profile set company=Acme topics=NPS bio=hello")
    assert await say("profile clear company") == "Cleared your company."
    member = await stored(community)
    assert member.company is None and member.topics == ["NPS"]
    assert await say("profile clear all") == "Cleared your whole profile."
    member = await stored(community)
    assert member.topics == [] and member.bio is None
    assert "Nothing shared yet" in await say("profile show")


async def test_clear_without_a_field_asks_which_and_clears_nothing(community: Community) -> None:
    await community.say("profile set company=Acme topics=NPS", "U1")
    asked = await community.say("profile clear", "U1")
    assert asked.startswith("Which field should I clear?")
    for field in ("company", "industry", "role", "seniority", "timezone", "topics", "bio", "all"):
        assert field in asked
    member = await stored(community)
    assert (member.company, member.topics) == ("Acme", ["NPS"])
