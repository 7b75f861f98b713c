"""Content curation, the pure part: which link an item is, which words are its tags,
and which items make a digest (votes with time decay, then diversity).

No I/O here: the command handlers, the digest job and the feed call these with
values they read from storage, and the unit tests call them with hand-built ones.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import socket
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from bot.core.cleaning import CONTROL_CHARACTERS, without_control_characters

MAX_URL_LENGTH = 2000
MAX_TAGS = 5
MAX_TAG_LENGTH = 30
MAX_TITLE_LENGTH = 200
MAX_NOTE_LENGTH = 500

# Query parameters that identify a campaign or a click, never the article itself.
TRACKING_PARAMETERS = frozenset(
    {
        "fbclid",
        "gclid",
        "gclsrc",
        "dclid",
        "gbraid",
        "wbraid",
        "msclkid",
        "yclid",
        "twclid",
        "ttclid",
        "li_fat_id",
        "igshid",
        "igsh",
        "mc_cid",
        "mc_eid",
        "mkt_tok",
        "_hsenc",
        "_hsmi",
        "hsctatracking",
        "oly_anon_id",
        "oly_enc_id",
        "vero_id",
        "vero_conv",
        "_ga",
        "_gl",
        "ref_src",
        "s_cid",
        "spm",
        "trk",
        "trkcampaign",
    }
)
TRACKING_PREFIXES = ("utm_", "pk_", "mtm_")
DEFAULT_PORTS = {"http": 80, "https": 443}

# Characters with a meaning in neutral markup links (`[label](url)`) or Slack's
# `<url|label>`: percent-encoded in a link so the link can never be broken open.
_MARKUP_URL_UNSAFE = re.compile(r"[()\[\]<>|\s\"'`@]")
_URL_IN_TEXT = re.compile(r"https?://[^\s<>|\"]+", re.IGNORECASE)
_TRAILING_PUNCTUATION = ".,;:!?'\"*_~"
_TAG_TOKEN = re.compile(r"^#([A-Za-z0-9][A-Za-z0-9_\-]*)[.,;:!?]*$")
# Channel references that platforms put where a member typed `#name`: Slack
# `<#C123|name>`, the console `<#name>`. Discord's `<#123>` carries no name.
_CHANNEL_TOKEN = re.compile(r"^<#([A-Za-z0-9_.\-]+)(?:\|([^>]*))?>[.,;:!?]*$")
_SLACK_SEQUENCE = re.compile(r"<([^<>|\s]+)(?:\|([^<>]*))?>")
_PERCENT_ESCAPE = re.compile(r"%[0-9a-fA-F]{2}")


class CurationError(ValueError):
    """A user-facing explanation of why a link, note or tag cannot be curated."""


@dataclass(frozen=True, slots=True)
class NormalisedUrl:
    url: str
    # Lowercase host without a leading "www.": "same domain" for diversity.
    domain: str

    @property
    def key(self) -> str:
        """A fixed-length key for the unique index (URLs can be 2,000 characters)."""
        return hashlib.sha256(self.url.encode("utf-8")).hexdigest()


def normalise_url(text: str) -> NormalisedUrl:
    """The canonical form of a shared link, so variants become one item.

    Lowercases scheme and host, drops default ports, credentials, fragments and
    tracking parameters (utm_*, fbclid, gclid, …), sorts the remaining query,
    and removes a trailing slash. A link without a scheme gets https://; any
    other scheme than http(s) is refused."""
    candidate = text.strip()
    if candidate.startswith("<") and candidate.endswith(">"):
        # Slack wraps links as <https://…> or <https://…|label>.
        candidate = candidate[1:-1].split("|", 1)[0]
    if not candidate:
        raise CurationError("Give me a link to curate, like https://example.com/article.")
    if len(candidate) > MAX_URL_LENGTH:
        raise CurationError(f"That link is longer than {MAX_URL_LENGTH} characters.")
    if CONTROL_CHARACTERS.search(candidate) or any(character.isspace() for character in candidate):
        raise CurationError("That link contains spaces or control characters.")
    scheme_match = re.match(r"^([A-Za-z][A-Za-z0-9+.\-]*):", candidate)
    if scheme_match is None or (
        "://" not in candidate and re.match(r"^[^/]+\.[^/]+:\d+", candidate)
    ):
        candidate = "https://" + candidate
    elif scheme_match.group(1).lower() not in DEFAULT_PORTS:
        raise CurationError(
            f"Only http and https links can be curated, not `{scheme_match.group(1)}:` links."
        )
    try:
        parts = urlsplit(candidate)
        port = parts.port
    except ValueError as error:
        raise CurationError(f"That link is not valid: {error}.") from None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".").lower()
    if scheme not in DEFAULT_PORTS or not host or ("." not in host and not _is_ip_literal(host)):
        if host == "localhost":
            _refuse_non_public(host, "this machine (a loopback name)")
        raise CurationError("That doesn't look like a web link. Use the full https://… address.")
    reason = non_public_reason(host)
    if reason is not None:
        _refuse_non_public(host, reason)
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != DEFAULT_PORTS[scheme]:
        netloc = f"{netloc}:{port}"
    path = _normalise_percent_escapes(parts.path) or "/"
    if len(path) > 1:
        path = path.rstrip("/") or "/"
    query = urlencode(
        sorted(
            (key, value)
            for key, value in parse_qsl(parts.query, keep_blank_values=True)
            if not _is_tracking_parameter(key)
        ),
        doseq=True,
    )
    url = urlunsplit((scheme, netloc, path, query, ""))
    domain = host.removeprefix("www.")
    return NormalisedUrl(url=url, domain=domain)


def non_public_reason(host: str) -> str | None:
    """Why `host` (lowercase, no brackets) is not on the public internet, if it is
    not: loopback, private and link-local hosts are refused alike, whether written
    as a name (`localhost`) or an address in any form (`127.0.0.1`, `127.1`, `::1`)."""
    if host == "localhost" or host.endswith(".localhost"):
        return "this machine (a loopback name)"
    if not _is_ip_literal(host):
        return None  # a public-looking name; the title fetcher checks what it resolves to
    try:
        if ":" in host:
            ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.IPv6Address(
                host.split("%", 1)[0]
            )
        else:
            # inet_aton reads every form a browser accepts: 127.1, 2130706433.
            ip = ipaddress.IPv4Address(socket.inet_aton(host))
    except (ValueError, OSError):
        return "not a valid address"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return "a loopback address (this machine)"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_private:
        return "a private network address"
    if not ip.is_global or ip.is_multicast:
        return "a reserved address"
    return None


def _refuse_non_public(host: str, reason: str) -> None:
    raise CurationError(
        f"That doesn't look like a web link anyone can open: {host} is {reason}, not a "
        "public address. Share the page's public https://… address."
    )


def _is_ip_literal(host: str) -> bool:
    return ":" in host or bool(re.fullmatch(r"[0-9.]+", host))


def _is_tracking_parameter(key: str) -> bool:
    lowered = key.lower()
    return lowered in TRACKING_PARAMETERS or lowered.startswith(TRACKING_PREFIXES)


def _normalise_percent_escapes(path: str) -> str:
    return _PERCENT_ESCAPE.sub(lambda match: match.group(0).upper(), path)


def first_link(text: str) -> str | None:
    """The first http(s) link in a message (Slack's `<url|label>` included)."""
    match = _URL_IN_TEXT.search(text)
    if match is None:
        return None
    link = match.group(0).rstrip(_TRAILING_PUNCTUATION)
    # A closing bracket belongs to the link only when the link opened one.
    while link.endswith(")") and link.count(")") > link.count("("):
        link = link[:-1].rstrip(_TRAILING_PUNCTUATION)
    return link


@dataclass(frozen=True, slots=True)
class Nomination:
    """What a member typed after the link: their note, with `#tags` taken out."""

    note: str
    tags: tuple[str, ...]


def parse_note(text: str) -> Nomination:
    """Split `Great read #nps #research` into the note and its tags."""
    words: list[str] = []
    tags: list[str] = []
    for word in text.split():
        tag = _tag_from_token(word)
        if tag is None:
            words.append(word)
        elif tag and tag not in tags:
            tags.append(tag)
    check_tags(tags)
    note = clean_text(" ".join(words))
    if len(note) > MAX_NOTE_LENGTH:
        raise CurationError(f"The note is {len(note)} characters; keep it under {MAX_NOTE_LENGTH}.")
    return Nomination(note=note, tags=tuple(tags))


def parse_tags(text: str) -> tuple[str, ...]:
    """Tags typed in a form or an option: `#nps research, CX-ops` (the # is optional)."""
    tags: list[str] = []
    for word in re.split(r"[\s,]+", text.strip()):
        if not word:
            continue
        tag = _tag_from_token(word if word.startswith(("#", "<#")) else f"#{word}")
        if tag is None:
            raise CurationError(
                f"`{clean_text(word)[:40]}` is not a tag: use letters, digits and dashes."
            )
        if tag and tag not in tags:
            tags.append(tag)
    check_tags(tags)
    return tuple(tags)


def check_tags(tags: Sequence[str]) -> None:
    if len(tags) > MAX_TAGS:
        raise CurationError(f"That's {len(tags)} tags; {MAX_TAGS} at most per item.")
    for tag in tags:
        if len(tag) > MAX_TAG_LENGTH:
            raise CurationError(f"The tag `#{tag[:20]}…` is longer than {MAX_TAG_LENGTH}.")


def _tag_from_token(word: str) -> str | None:
    """The tag in a token, "" for a channel reference without a usable name, None
    when the token is not a tag at all."""
    match = _TAG_TOKEN.match(word)
    if match is not None:
        return canonical_tag(match.group(1))
    channel = _CHANNEL_TOKEN.match(word)
    if channel is None:
        return None
    name = channel.group(2) or channel.group(1)
    if name.isdigit():
        return ""
    return canonical_tag(name)


def canonical_tag(text: str) -> str:
    tag = re.sub(r"[^a-z0-9\-]+", "-", text.lower()).strip("-")
    return re.sub(r"-{2,}", "-", tag)


def clean_text(text: str) -> str:
    """Member text as stored: no control characters (invalid in the Atom feed's
    XML) and no mention-safety sentinels, whitespace collapsed."""
    return " ".join(without_control_characters(text, " ").split())


def display_title(title: str) -> str:
    """A title safe inside a neutral markup link label."""
    cleaned = clean_text(title).replace("[", "(").replace("]", ")")
    if len(cleaned) > MAX_TITLE_LENGTH:
        cleaned = cleaned[: MAX_TITLE_LENGTH - 1].rstrip() + "…"
    return cleaned


def _readable_sequence(match: re.Match[str]) -> str:
    """Slack's `<https://…|label>`, `<@U1>`, `<#C1|name>`, `<!here>` as a person reads them."""
    target, label = match.group(1), match.group(2)
    if target.startswith(("@", "#")):
        return target[0] + label if label else target
    if target.startswith("!"):
        return ""
    return f" {label} " if label else " "


def link_markup(title: str, url: str) -> str:
    """A neutral markup link `[title](url)` built from member-supplied parts.

    Adapters recognise links only in the bot's own markup, so the parts are made
    safe here: the label cannot close the link or ping anyone (a zero-width space
    follows every `@` and `<`), and the target is percent-encoded."""
    label = re.sub(r"([@<])", "\\1\u200b", display_title(title)) or markup_url(url)
    return f"[{label}]({markup_url(url)})"


def markup_url(url: str) -> str:
    """A URL safe inside a neutral markup link target (no brackets, pipes, spaces,
    or `@` that a platform could read as a mention)."""
    return _MARKUP_URL_UNSAFE.sub(lambda match: quote(match.group(0), safe=""), url)


def fallback_title(url: NormalisedUrl, text: str = "") -> str:
    """The title shown until (or unless) the page's own title is fetched: the
    member's words without the link, else the link's host and path."""
    words = clean_text(_URL_IN_TEXT.sub(" ", _SLACK_SEQUENCE.sub(_readable_sequence, text)))
    # "Worth a look: <link>" loses the link; its colon should go with it.
    words = words.rstrip(" :;,-–—")
    if words:
        return display_title(words)
    parts = urlsplit(url.url)
    path = parts.path if parts.path != "/" else ""
    return display_title(f"{url.domain}{path}")


def merged_tags(existing: Sequence[str], added: Sequence[str]) -> list[str]:
    """A later nomination's tags join the item's, up to the limit per item."""
    merged = list(existing)
    for tag in added:
        if tag not in merged and len(merged) < MAX_TAGS:
            merged.append(tag)
    return merged


def tag_text(tags: Sequence[str]) -> str:
    return " ".join(f"#{tag}" for tag in tags)


# --- Finding ---------------------------------------------------------------------

MAX_SEARCH_WORDS = 8
# How far back `curate top` looks; None is all time.
PERIODS: dict[str, timedelta | None] = {
    "week": timedelta(days=7),
    "month": timedelta(days=30),
    "all": None,
}


def search_words(text: str) -> list[str]:
    """The distinct lowercase words of a search, in the order typed."""
    words = list(dict.fromkeys(clean_text(text).lower().split()))
    if len(words) > MAX_SEARCH_WORDS:
        raise CurationError(f"Search with at most {MAX_SEARCH_WORDS} words.")
    return words


def period_and_tag(first: str | None, second: str | None) -> tuple[str, str | None]:
    """Text platforms send `top #nps` as well as `top month #nps`: a `#tag` in the
    period's place is the tag."""
    period = "week"
    tags: list[str] = []
    if first is not None:
        if first.lower() in PERIODS:
            period = first.lower()
        elif first.startswith(("#", "<#")):
            tags.append(first)
        else:
            raise CurationError(
                f"`{clean_text(first)[:40]}` is not a period: use week, month or all "
                "(and start a tag with #, like `/kindred curate top month #nps`)."
            )
    if second is not None:
        tags.append(second)
    if not tags:
        return period, None
    if len(tags) > 1:
        raise CurationError("Give one period (week, month or all) and at most one tag.")
    try:
        parsed = parse_tags(tags[0])
    except CurationError:
        raise CurationError(
            f"`{clean_text(tags[0])[:40]}` is neither a period (week, month, all) nor a tag."
        ) from None
    if len(parsed) != 1:
        raise CurationError("Filter by one tag at a time, like `/kindred curate top month #nps`.")
    return period, parsed[0]


# --- Reactions -------------------------------------------------------------------

DEFAULT_EMOJI = "pushpin"
# Slack names a reaction (`pushpin`), Discord sends the character (📌): a known
# name and its character are the same emoji.
EMOJI_CHARACTERS = {
    "pushpin": "📌",
    "round_pushpin": "📍",
    "bookmark": "🔖",
    "books": "📚",
    "star": "⭐",
    "star2": "🌟",
    "bulb": "💡",
    "gem": "💎",
    "fire": "🔥",
    "heart": "❤",
    "+1": "👍",
    "thumbsup": "👍",
}
_CHARACTER_NAMES = {character: name for name, character in EMOJI_CHARACTERS.items()}
_DISCORD_CUSTOM_EMOJI = re.compile(r"^<a?:([A-Za-z0-9_~\-]+):\d+>$")


def canonical_emoji(text: str) -> str:
    """One spelling per emoji: `:pushpin:`, `pushpin` and `📌` are all `pushpin`;
    Slack skin tones and Discord custom emoji ids are dropped."""
    name = text.strip()
    custom = _DISCORD_CUSTOM_EMOJI.match(name)
    if custom is not None:
        name = custom.group(1)
    name = name.split("::", 1)[0].strip(":").replace("\ufe0f", "")
    return _CHARACTER_NAMES.get(name, name.lower())


def configured_emoji(text: str) -> str | None:
    """The curation reaction an admin typed, as stored: None for the default pin."""
    emoji = clean_text(text).strip(":")
    if not emoji or len(emoji) > 64 or " " in emoji:
        raise CurationError("Give one emoji, like `emoji=pushpin` or `emoji=📌`.")
    return None if canonical_emoji(emoji) == DEFAULT_EMOJI else emoji


def emoji_matches(configured: str | None, reaction: str) -> bool:
    return canonical_emoji(configured or DEFAULT_EMOJI) == canonical_emoji(reaction)


# --- Ranking -------------------------------------------------------------------

HALF_LIFE = timedelta(days=7)
FEATURED_BONUS = 1.5
MAX_PER_SHARER = 2
MAX_PER_DOMAIN = 2
MAX_PER_TAG = 2
DIGEST_SIZE = 7


@dataclass(frozen=True, slots=True)
class Candidate:
    item_id: int
    votes: int
    shared_at: datetime
    sharer: str
    domain: str
    tags: tuple[str, ...] = ()
    featured: bool = False


def score(candidate: Candidate, now: datetime, half_life: timedelta = HALF_LIFE) -> float:
    """Votes (plus a small bonus when a curator featured the item), halved for
    every `half_life` the item has been around."""
    age = max((now - candidate.shared_at).total_seconds(), 0.0)
    weight = candidate.votes + (FEATURED_BONUS if candidate.featured else 0.0)
    decay: float = 0.5 ** (age / half_life.total_seconds())
    return weight * decay


def rank(candidates: Iterable[Candidate], now: datetime) -> list[Candidate]:
    """Best first; ties go to more votes, then the newer item, then the older id."""
    return sorted(
        candidates,
        key=lambda item: (
            -score(item, now),
            -item.votes,
            -item.shared_at.timestamp(),
            item.item_id,
        ),
    )


def select_digest(
    candidates: Iterable[Candidate], now: datetime, size: int = DIGEST_SIZE
) -> list[Candidate]:
    """The digest: highest-ranked items, at most two per sharer and two per domain.

    Tags are mixed too, more gently: an item whose every tag already appears
    twice waits until the varied items are placed, and only fills places left."""
    chosen: list[Candidate] = []
    sharers: Counter[str] = Counter()
    domains: Counter[str] = Counter()
    tag_counts: Counter[str] = Counter()
    waiting: list[Candidate] = []

    def fits(item: Candidate) -> bool:
        return sharers[item.sharer] < MAX_PER_SHARER and domains[item.domain] < MAX_PER_DOMAIN

    def take(item: Candidate) -> None:
        chosen.append(item)
        sharers[item.sharer] += 1
        domains[item.domain] += 1
        tag_counts.update(item.tags)

    for item in rank(candidates, now):
        if len(chosen) >= size:
            break
        if not fits(item):
            continue
        if item.tags and all(tag_counts[tag] >= MAX_PER_TAG for tag in item.tags):
            waiting.append(item)
            continue
        take(item)
    for item in waiting:
        if len(chosen) >= size:
            break
        if fits(item):
            take(item)
    return rank(chosen, now)
