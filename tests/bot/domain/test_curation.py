from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.domain.curation import (
    Candidate,
    CurationError,
    canonical_emoji,
    emoji_matches,
    fallback_title,
    first_link,
    link_markup,
    markup_url,
    normalise_url,
    parse_note,
    parse_tags,
    rank,
    score,
    select_digest,
)

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "variant",
    [
        "https://example.com/article",
        "HTTPS://Example.COM/article",
        "https://example.com/article/",
        "https://example.com:443/article",
        "https://example.com/article#comments",
        "https://example.com/article?utm_source=slack&utm_medium=social",
        "https://example.com/article?fbclid=IwAR0abc",
        "https://example.com/article?gclid=xyz&UTM_Campaign=q4",
        "https://example.com./article",
        "<https://example.com/article?mc_cid=1|example.com/article>",
        "example.com/article",
    ],
)
def test_variants_of_one_article_normalise_to_one_url(variant: str) -> None:
    normalised = normalise_url(variant)
    assert normalised.url == "https://example.com/article"
    assert normalised.key == normalise_url("https://example.com/article").key


def test_normalisation_keeps_what_identifies_the_page() -> None:
    link = normalise_url("https://WWW.Blog.Example.com/Posts/NPS?b=2&a=1&utm_term=x#top")
    # Path case and meaningful parameters stay; the query is sorted; www. is not the domain.
    assert link.url == "https://www.blog.example.com/Posts/NPS?a=1&b=2"
    assert link.domain == "blog.example.com"
    assert normalise_url("http://example.com/a").url != normalise_url("https://example.com/a").url
    assert normalise_url("https://example.com:8443/a").url == "https://example.com:8443/a"
    assert normalise_url("https://example.com").url == "https://example.com/"
    assert normalise_url("https://user:secret@example.com/a").url == "https://example.com/a"
    assert normalise_url("https://example.com/a%2fb").url == "https://example.com/a%2Fb"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("javascript:alert(1)", "Only http and https"),
        ("ftp://files.example.com/report.pdf", "Only http and https"),
        ("mailto:ana@example.com", "Only http and https"),
        ("data:text/html,<script>alert(1)</script>", "Only http and https"),
        ("https://", "doesn't look like a web link"),
        ("http://localhost/admin", "doesn't look like a web link"),
        ("https://example.com/a b", "spaces"),
        ("", "Give me a link"),
        ("https://example.com/" + "a" * 2100, "longer than"),
        ("https://example.com:99999/", "not valid"),
    ],
)
def test_links_that_cannot_be_curated_are_refused(text: str, message: str) -> None:
    with pytest.raises(CurationError, match=message):
        normalise_url(text)


def test_first_link_in_a_message() -> None:
    assert first_link("Read <https://a.example/x?y=1|this> now") == "https://a.example/x?y=1"
    assert first_link("(see https://en.wikipedia.org/wiki/NPS_(metric)).") == (
        "https://en.wikipedia.org/wiki/NPS_(metric)"
    )
    assert first_link("Great post: https://example.com/a, really.") == "https://example.com/a"
    assert first_link("no link, just javascript:alert(1)") is None


def test_a_note_gives_up_its_tags() -> None:
    nomination = parse_note(
        "Great read #NPS <#C024BE7LR|cx-ops> #nps, for <#1234> #Journey_Mapping"
    )
    assert nomination.tags == ("nps", "cx-ops", "journey-mapping")
    # A Discord channel mention carries no name: it is neither a tag nor left in the note.
    assert nomination.note == "Great read for"
    assert parse_note("").tags == ()
    # The console writes `#general` as `<#general>` when that channel exists.
    assert parse_note("<#general> read").tags == ("general",)


def test_tags_are_limited() -> None:
    with pytest.raises(CurationError, match="5 at most"):
        parse_note("#a #b #c #d #e #f")
    with pytest.raises(CurationError, match="longer than"):
        parse_tags("#" + "x" * 31)
    with pytest.raises(CurationError, match="is not a tag"):
        parse_tags("nps, @everyone")
    assert parse_tags("nps, #Research  cx-ops") == ("nps", "research", "cx-ops")
    assert parse_tags("") == ()


def test_fallback_titles_read_like_the_message() -> None:
    link = normalise_url("https://example.com/blog/nps-is-dead")
    assert fallback_title(link, "Hot take <https://example.com/blog/nps-is-dead|here> <@U1>") == (
        "Hot take here @U1"
    )
    assert fallback_title(link, "") == "example.com/blog/nps-is-dead"
    assert fallback_title(link, "https://example.com/blog/nps-is-dead") == (
        "example.com/blog/nps-is-dead"
    )


def test_links_in_markup_cannot_break_out_or_ping() -> None:
    markup = link_markup(
        "Hi @everyone <!channel> [click](https://evil.example)", "https://x.io/a(b)|c"
    )
    label, _, target = markup.partition("](")
    assert "@everyone" not in label and "<!" not in label
    assert "[" not in label[1:] and "]" not in label
    assert target == "https://x.io/a%28b%29%7Cc)"
    assert markup_url("https://medium.com/@ana/post") == "https://medium.com/%40ana/post"


def test_emoji_spellings() -> None:
    assert canonical_emoji(":pushpin:") == canonical_emoji("📌") == "pushpin"
    assert canonical_emoji("+1::skin-tone-3") == "+1"
    assert canonical_emoji("<:kindred:112233>") == "kindred"
    assert emoji_matches(None, "📌") and emoji_matches(None, "pushpin")
    assert not emoji_matches(None, "eyes")
    assert emoji_matches("star", "⭐") and not emoji_matches("star", "📌")


def item(
    item_id: int,
    votes: int,
    *,
    days_old: float = 1,
    sharer: str = "",
    domain: str = "",
    tags: tuple[str, ...] = (),
    featured: bool = False,
) -> Candidate:
    return Candidate(
        item_id=item_id,
        votes=votes,
        shared_at=NOW - timedelta(days=days_old),
        sharer=sharer or f"user{item_id}",
        domain=domain or f"site{item_id}.example",
        tags=tags,
        featured=featured,
    )


def test_votes_decay_with_age() -> None:
    assert score(item(1, 4, days_old=7), NOW) == pytest.approx(2.0)
    assert score(item(1, 4, days_old=0), NOW) == pytest.approx(4.0)
    # Three fresh votes beat five votes from two weeks ago.
    fresh, old = item(1, 3, days_old=0.5), item(2, 5, days_old=14)
    assert [c.item_id for c in rank([old, fresh], NOW)] == [1, 2]
    # Featured items get a small lift, not a trump card.
    featured = item(3, 2, days_old=1, featured=True)
    assert score(featured, NOW) > score(item(4, 3, days_old=1), NOW)
    assert score(featured, NOW) < score(item(5, 4, days_old=1), NOW)


def test_ties_break_on_votes_then_recency_then_id() -> None:
    same = [item(7, 2, days_old=1), item(3, 2, days_old=1), item(5, 2, days_old=0.5)]
    assert [c.item_id for c in rank(same, NOW)] == [5, 3, 7]


def test_digest_limits_each_sharer_and_domain_to_two() -> None:
    prolific = [item(n, 10 - n, sharer="ana") for n in range(1, 5)]
    one_site = [item(n, 9 - n, domain="hbr.org") for n in range(5, 9)]
    others = [item(n, 1) for n in range(9, 12)]
    chosen = select_digest([*prolific, *one_site, *others], NOW)
    assert len(chosen) == 7
    assert sum(c.sharer == "ana" for c in chosen) == 2
    assert sum(c.domain == "hbr.org" for c in chosen) == 2
    assert [c.item_id for c in chosen] == [1, 2, 5, 6, 9, 10, 11]


def test_digest_mixes_tags_but_fills_with_repeats_when_nothing_else_is_left() -> None:
    nps = [item(n, 20 - n, tags=("nps",)) for n in range(1, 5)]
    research = item(5, 2, tags=("research",))
    mixed = item(6, 1, tags=("nps", "onboarding"))
    chosen = select_digest([*nps, research, mixed], NOW, size=5)
    # The third and fourth NPS items wait until the varied ones are in.
    assert {c.item_id for c in chosen} == {1, 2, 5, 6, 3}
    # The result is in rank order.
    assert [c.item_id for c in chosen] == [1, 2, 3, 5, 6]


def test_empty_week_makes_an_empty_digest() -> None:
    assert select_digest([], NOW) == []


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("http://127.0.0.1/admin", "127.0.0.1 is a loopback address"),
        ("http://localhost:3000/admin", "localhost is this machine"),
        ("http://localhost/admin", "localhost is this machine"),
        ("http://app.localhost/", "app.localhost is this machine"),
        ("http://127.1/", "127.1 is a loopback address"),
        ("http://2130706433/", "2130706433 is a loopback address"),
        ("http://[::1]:8080/", "::1 is a loopback address"),
        ("http://[::ffff:127.0.0.1]/", "is a loopback address"),
        ("http://10.1.2.3/wiki", "10.1.2.3 is a private network address"),
        ("http://192.168.0.1/", "is a private network address"),
        ("http://169.254.169.254/latest/meta-data", "169.254.169.254 is a link-local address"),
        ("http://[fe80::1]/", "fe80::1 is a link-local address"),
    ],
)
def test_loopback_private_and_link_local_hosts_are_refused_alike(text: str, reason: str) -> None:
    """127.0.0.1 was accepted while localhost:3000 was refused (#18)."""
    with pytest.raises(CurationError, match="not a public address") as refusal:
        normalise_url(text)
    assert reason in str(refusal.value)


def test_public_addresses_are_still_accepted() -> None:
    assert normalise_url("http://8.8.8.8/x").url == "http://8.8.8.8/x"
    assert normalise_url("https://[2606:4700::1111]/").url == "https://[2606:4700::1111]/"
