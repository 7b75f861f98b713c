from __future__ import annotations

from sqlalchemy import select

from bot.core.app import Kindred
from bot.core.mentions import strip_markup_for_plain_text
from bot.core.platform import Inbound
from storage.models import Member


def command(text: str, user: str = "U1") -> Inbound:
    return Inbound(
        kind="command", platform="fake", workspace_id="W1", user_id=user, text=text, user_name="Ana"
    )


async def reply_text(kindred: Kindred, text: str, user: str = "U1") -> str:
    reply = await kindred.handle(command(text, user))
    assert reply is not None and reply.message is not None
    return strip_markup_for_plain_text(reply.message.text)


async def stored(kindred: Kindred, user: str = "U1") -> Member:
    async with kindred.db.sessions() as session:
        query = select(Member).where(Member.user_id == user)
        return (await session.execute(query)).scalar_one()


async def test_set_and_show(kindred: Kindred) -> None:
    text = await reply_text(
        kindred,
        'profile set company=Acme timezone=europe/berlin topics="journey mapping, NPS, nps" '
        'seniority=Lead role="Head of CX"',
    )
    assert text.startswith("Saved your company, role, seniority, timezone, topics.")
    member = await stored(kindred)
    assert (member.company, member.timezone, member.seniority) == ("Acme", "Europe/Berlin", "lead")
    assert member.topics == ["journey mapping", "NPS"]
    shown = await reply_text(kindred, "profile show <@U1>", user="U2")
    assert "• Head of CX at Acme" in shown
    assert "Europe/Berlin (now 10:00)" in shown


async def test_invalid_values_store_nothing(kindred: Kindred) -> None:
    await reply_text(kindred, "profile set company=Acme")
    text = await reply_text(kindred, "profile set company=Globex timezone=Europe/Berlim")
    assert "`Europe/Berlim` is not a time zone I know. Did you mean Europe/Berlin" in text
    assert (await stored(kindred)).company == "Acme"
    long_bio = "x" * 501
    assert "the limit is 500" in await reply_text(kindred, f"profile set bio={long_bio}")
    many = ",".join(f"t{n}" for n in range(11))
    assert "pick your top 10" in await reply_text(kindred, f"profile set topics={many}")
    assert "Tell me what to set" in await reply_text(kindred, "profile set")
    assert "must be one of" in await reply_text(kindred, "profile set seniority=wizard")
    assert (await stored(kindred)).company == "Acme"


async def test_clear_one_field_or_all(kindred: Kindred) -> None:
    await reply_text(kindred, "profile set company=Acme topics=NPS bio=hello")
    assert await reply_text(kindred, "profile clear company") == "Cleared your company."
    member = await stored(kindred)
    assert member.company is None and member.topics == ["NPS"]
    assert await reply_text(kindred, "profile clear") == "Cleared your whole profile."
    member = await stored(kindred)
    assert member.topics == [] and member.bio is None
    assert "Nothing shared yet" in await reply_text(kindred, "profile show")
