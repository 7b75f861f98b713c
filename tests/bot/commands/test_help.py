"""`/kindred help`: an overview that fits one message on every platform, and each
feature's own commands on request (issue #11)."""

from __future__ import annotations

from bot.commands import declared_features
from tests.driver import Community

DISCORD_SAFE = 1800  # Discord's limit is 2,000; leave room for rendering.


async def test_the_overview_fits_one_discord_message(community: Community) -> None:
    overview = (await community.command("help")).message
    assert overview is not None
    assert len(overview.text) < DISCORD_SAFE
    for feature in declared_features():
        if feature.handlers.commands:
            assert f"**{feature.name}**: {feature.summary}" in overview.text
            for command in feature.highlights:
                assert f"`/kindred {command}`" in overview.text


async def test_a_feature_alone_or_after_help_lists_its_commands(community: Community) -> None:
    coffee = await community.say("help coffee")
    assert coffee == await community.say("coffee")
    assert "/kindred coffee join" in coffee and "/kindred coffee stats" in coffee
    assert "/kindred ama ask" not in coffee
    # Curation owns two command groups; either word finds it.
    assert await community.say("help curate") == await community.say("help curation")
    assert "/kindred digest subscribe" in await community.say("curate")


async def test_an_unknown_subcommand_says_so_before_listing(community: Community) -> None:
    answer = await community.say("coffee brew")
    assert answer.startswith("There is no `/kindred coffee brew`.")
    assert "/kindred coffee join" in answer
    assert "There is no feature called `tea`" in await community.say("help tea")


def test_every_highlight_is_a_command_of_its_feature() -> None:
    for feature in declared_features():
        names = {spec.name for spec in feature.handlers.commands}
        assert set(feature.highlights) <= names, feature.name
