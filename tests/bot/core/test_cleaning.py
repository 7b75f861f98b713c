"""Member text loses control characters where an Inbound enters the core (#18)."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import select

from bot.core.app import Kindred
from bot.core.cleaning import clean_inbound, without_control_characters
from bot.core.mentions import MEMBER_TEXT_END, strip_markup_for_plain_text
from bot.core.platform import Inbound
from bot.core.settings import Settings
from bot.domain.curation import clean_text
from storage.ama import AmaQuestion
from storage.db import Database
from storage.models import Member
from tests.conftest import Clock
from tests.fakes.platform import FakePlatform

DIRTY = "a\x00b\x07c\r\n\td\x1b\x7f\x85\ud800" + MEMBER_TEXT_END + "e"


def test_control_characters_go_newline_and_tab_stay() -> None:
    assert without_control_characters(DIRTY) == "abc\n\tde"
    # Curation's own cleaner (one line, a space for each, spaces collapsed) shares it.
    assert clean_text(DIRTY) == "a b c d e"


def test_text_options_form_values_value_and_name_are_cleaned() -> None:
    inbound = Inbound(
        kind="modal_submit",
        platform="fake",
        workspace_id="W1",
        user_id="U1",
        text=DIRTY,
        options={"question": DIRTY, "count": 3, "tags": [DIRTY]},
        value=DIRTY,
        user_name="Ana\x00",
        raw={"text": DIRTY},
    )
    cleaned = clean_inbound(inbound)
    assert cleaned.text == cleaned.value == cleaned.options["question"] == "abc\n\tde"
    assert cleaned.options["count"] == 3 and cleaned.options["tags"] == ["abc\n\tde"]
    assert cleaned.user_name == "Ana"
    assert cleaned.raw == {"text": DIRTY}


def command(text: str, user: str = "alice") -> Inbound:
    return Inbound(
        kind="command",
        platform="fake",
        workspace_id="W1",
        user_id=user,
        channel_id="C-ama",
        text=text,
        user_name=user.title() + "\x00",
    )


async def answer(kindred: Kindred, text: str, user: str = "alice") -> str:
    reply = await kindred.handle(command(text, user))
    assert reply is not None and reply.message is not None
    return strip_markup_for_plain_text(reply.message.text).replace("**", "")


async def test_a_nul_byte_is_stored_without_it_on_every_database(
    db: Database, settings: Settings, clock: Clock
) -> None:
    """PostgreSQL refuses NUL in text; the member got "Something went wrong"."""
    platform = FakePlatform()
    platform.admins.add("alice")
    kindred = Kindred(replace(settings, database_url=str(db.url)), db, clock=clock)
    kindred.attach(platform)
    reply = await answer(kindred, 'profile set company="a\x00b" bio="x\x00y" industry=S\x00aaS')
    assert "Something went wrong" not in reply
    reply = await answer(
        kindred, 'ama schedule host:<@alice> title:"T\x00itle" at:"2026-11-24 15:00"'
    )
    assert reply.startswith("Scheduled AMA #1: Title"), reply
    reply = await answer(kindred, "ama ask Why\x00 is NUL refused? anonymous=yes", "bob")
    assert "Something went wrong" not in reply
    async with db.sessions() as session:
        member = (
            await session.execute(select(Member).where(Member.user_id == "alice"))
        ).scalar_one()
        question = (await session.execute(select(AmaQuestion))).scalar_one()
    assert (member.company, member.bio, member.industry) == ("ab", "xy", "SaaS")
    assert member.display_name == "Alice"
    assert (question.text, question.anonymous) == ("Why is NUL refused?", True)
    await kindred.stop()
