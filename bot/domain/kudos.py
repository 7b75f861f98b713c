"""Recognition's pure rules: what a valid reason is, how repeated kudos decay, which
pairs and rings are flagged, and the written rule for "recognised contributor"
with its monthly hysteresis. No I/O: the service hands in plain values."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

# A reason says what the person did: a few words, not "thx".
MIN_REASON_WORDS = 3
MAX_REASON_LENGTH = 500
# Repeated kudos from one giver to one receiver within this window count 1/k.
REPEAT_WINDOW = timedelta(days=30)
# Status looks at the last year of kudos and evidence.
STATUS_WINDOW = timedelta(days=365)
# A closed ring is a small group; a whole small community thanking itself is not one.
RING_MIN_SIZE = 3
RING_MAX_SIZE = 8
# The status is dropped after this many monthly reviews in a row below the bar.
MONTHS_BELOW_TO_DROP = 2
MAX_CATEGORIES = 12
MAX_CATEGORY_LENGTH = 40
DEFAULT_CATEGORIES = ("helpful answer", "great share", "welcomed a newcomer")
DEFAULT_EMOJI = "raised_hands"
# Slack names a reaction (`raised_hands`), Discord sends the character (🙌).
EMOJI_CHARACTERS = {
    "raised_hands": "🙌",
    "clap": "👏",
    "tada": "🎉",
    "pray": "🙏",
    "heart": "❤",
    "star": "⭐",
    "trophy": "🏆",
    "sparkles": "✨",
    "100": "💯",
    "medal": "🏅",
    "muscle": "💪",
    "rocket": "🚀",
}
_CHARACTER_NAMES = {character: name for name, character in EMOJI_CHARACTERS.items()}
_DISCORD_CUSTOM_EMOJI = re.compile(r"^<a?:([A-Za-z0-9_]+):\d+>$")


class KudosError(ValueError):
    """A refusal of a member's input: `why` names it, `values` fill its sentence
    (the words live in config/templates/kudos/refused.j2)."""

    def __init__(self, why: str, **values: object) -> None:
        super().__init__(why)
        self.why = why
        self.values = values


def clean_words(text: str) -> str:
    return " ".join(text.split())


def parse_reason(text: str) -> str:
    """The reason as stored: whitespace tidied; refused when too short or too long."""
    reason = clean_words(text)
    if len(reason.split()) < MIN_REASON_WORDS:
        raise KudosError("short_reason", words=MIN_REASON_WORDS)
    if len(reason) > MAX_REASON_LENGTH:
        raise KudosError("long_reason", length=MAX_REASON_LENGTH)
    return reason


def parse_categories(text: str) -> list[str]:
    """`helpful answer, great share` → the community's category list."""
    categories: list[str] = []
    for raw in text.split(","):
        category = clean_words(raw).lower()
        if not category:
            continue
        if len(category) > MAX_CATEGORY_LENGTH:
            raise KudosError("long_category", length=MAX_CATEGORY_LENGTH)
        if category not in categories:
            categories.append(category)
    if not categories:
        raise KudosError("no_categories")
    if len(categories) > MAX_CATEGORIES:
        raise KudosError("many_categories", count=len(categories), most=MAX_CATEGORIES)
    return categories


def match_category(text: str, categories: Sequence[str]) -> str:
    """The community's category `text` names (case and spacing ignored)."""
    wanted = clean_words(text.replace("_", " ").replace("-", " ")).lower()
    for category in categories:
        if clean_words(category.replace("-", " ")).lower() == wanted:
            return category
    raise KudosError("unknown_category", category=text, categories=list(categories))


def canonical_emoji(text: str) -> str:
    """One spelling per emoji: `:raised_hands:`, `raised_hands` and `🙌` are the same;
    Slack skin tones and Discord custom emoji ids are dropped."""
    name = text.strip()
    custom = _DISCORD_CUSTOM_EMOJI.match(name)
    if custom is not None:
        name = custom.group(1)
    name = name.split("::", 1)[0].strip(":").replace("\ufe0f", "")
    return _CHARACTER_NAMES.get(name, name.lower())


def configured_emoji(text: str) -> str:
    emoji = clean_words(text).strip(":")
    if not emoji or len(emoji) > 64 or " " in emoji:
        raise KudosError("bad_emoji")
    return canonical_emoji(emoji)


def emoji_matches(configured: str, reaction: str) -> bool:
    return canonical_emoji(configured) == canonical_emoji(reaction)


def day_start(now: datetime, timezone: str) -> datetime:
    """Midnight of `now`'s day in `timezone`: the daily allowance resets there."""
    local = now.astimezone(ZoneInfo(timezone))
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def month_start(now: datetime, timezone: str) -> datetime:
    return day_start(now, timezone).replace(day=1)


def previous_month_start(start_of_month: datetime) -> datetime:
    return (start_of_month - timedelta(days=1)).replace(day=1)


# --- Counting toward status -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class Given:
    """One kudos that stands (neither withdrawn nor revoked)."""

    kudos_id: int
    giver: str
    receiver: str
    at: datetime
    has_reason: bool


def repeat_weights(kudos: Iterable[Given], window: timedelta = REPEAT_WINDOW) -> dict[int, float]:
    """1/k for the k-th kudos from one giver to one receiver within `window` of the
    ones before it: the second in a month counts half, the third a third."""
    by_pair: dict[tuple[str, str], list[Given]] = defaultdict(list)
    for given in kudos:
        by_pair[(given.giver, given.receiver)].append(given)
    weights: dict[int, float] = {}
    for pair_kudos in by_pair.values():
        pair_kudos.sort(key=lambda given: (given.at, given.kudos_id))
        for index, given in enumerate(pair_kudos):
            recent = sum(1 for earlier in pair_kudos[:index] if given.at - earlier.at < window)
            weights[given.kudos_id] = 1 / (recent + 1)
    return weights


@dataclass(frozen=True, slots=True)
class Flags:
    """Patterns that do not count toward status, shown to admins."""

    pairs: tuple[frozenset[str], ...] = ()
    rings: tuple[frozenset[str], ...] = ()

    def excludes(self, giver: str, receiver: str) -> bool:
        """Whether a kudos between these two stays inside a flagged pair or ring."""
        both = {giver, receiver}
        return any(both <= group for group in (*self.pairs, *self.rings))

    def flagged_members(self) -> set[str]:
        return {member for group in (*self.pairs, *self.rings) for member in group}


def _received_and_given(
    kudos: Iterable[Given],
) -> tuple[dict[str, dict[str, int]], dict[str, dict[str, int]]]:
    received: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    given_to: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for given in kudos:
        if given.giver == given.receiver:
            continue
        received[given.receiver][given.giver] += 1
        given_to[given.giver][given.receiver] += 1
    return received, given_to


def reciprocal_pairs(kudos: Iterable[Given]) -> list[frozenset[str]]:
    """Pairs in which each gets half or more of their kudos from the other."""
    received, _ = _received_and_given(kudos)
    pairs: set[frozenset[str]] = set()
    for receiver, givers in received.items():
        total = sum(givers.values())
        for giver, count in givers.items():
            back = received.get(giver, {})
            back_total = sum(back.values())
            if 2 * count >= total and back_total and 2 * back.get(receiver, 0) >= back_total:
                pairs.add(frozenset((giver, receiver)))
    return sorted(pairs, key=sorted)


def closed_rings(kudos: Iterable[Given]) -> list[frozenset[str]]:
    """Small groups (RING_MIN_SIZE to RING_MAX_SIZE) linked in a cycle, in which every
    member gets half or more of their kudos from the group and gives half or more
    of theirs to it. Each member's circle (who thanked them, whom they thanked) is a
    candidate: members whose kudos mostly come from or go outside it are pruned,
    and what is left, if it is still one cycle, is a ring."""
    received, given_to = _received_and_given(kudos)
    everyone = set(received) | set(given_to)
    # Candidates: each member's circle (finds a dense ring with a few links outside)
    # and each cycle of the whole graph (finds a ring that thanks round in a loop).
    candidates = [
        {member, *received.get(member, {}), *given_to.get(member, {})}
        for member in sorted(everyone)
    ]
    candidates += _cycles(everyone, given_to)
    rings: set[frozenset[str]] = set()
    for candidate in candidates:
        group = _prune(candidate, received, given_to)
        for component in _cycles(group, given_to):
            if RING_MIN_SIZE <= len(component) <= RING_MAX_SIZE:
                rings.add(frozenset(component))
    return sorted(rings, key=sorted)


def _prune(
    group: set[str],
    received: Mapping[str, Mapping[str, int]],
    given_to: Mapping[str, Mapping[str, int]],
) -> set[str]:
    group = set(group)
    while True:
        keep = {
            member
            for member in group
            if _mostly_inside(received.get(member, {}), group)
            and _mostly_inside(given_to.get(member, {}), group)
        }
        if keep == group:
            return group
        group = keep


def _mostly_inside(counts: Mapping[str, int], group: set[str]) -> bool:
    total = sum(counts.values())
    return (
        total > 0 and 2 * sum(count for other, count in counts.items() if other in group) >= total
    )


def _cycles(group: set[str], given_to: Mapping[str, Mapping[str, int]]) -> list[set[str]]:
    """The strongly connected parts of `group` (Tarjan), larger than one member."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(given_to.get(node, {})):
            if target not in group:
                continue
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component: set[str] = set()
            while True:
                popped = stack.pop()
                on_stack.discard(popped)
                component.add(popped)
                if popped == node:
                    break
            if len(component) > 1:
                found.append(component)

    for node in sorted(group):
        if node not in index:
            visit(node)
    return found


def flags(kudos: Sequence[Given]) -> Flags:
    return Flags(tuple(reciprocal_pairs(kudos)), tuple(closed_rings(kudos)))


# --- The status rule -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rule:
    """The community's written rule for "recognised contributor"."""

    min_kudos: int = 8
    min_givers: int = 5
    min_companies: int = 2
    min_days: int = 30
    min_evidence: int = 1


@dataclass(frozen=True, slots=True)
class Assessment:
    """Where one member stands against the rule, with the figures it is made of."""

    rule: Rule
    # Kudos with reasons, repeats weighed 1/k, flagged pairs and rings left out.
    weighted_kudos: float
    givers: int
    companies: int
    # Days since the first kudos that counts.
    days: int
    evidence: tuple[str, ...]
    # Kudos that stand but do not count, and why.
    without_reason: int = 0
    flagged: int = 0
    givers_without_company: int = 0
    missing: tuple[str, ...] = field(default=())

    @property
    def met(self) -> bool:
        return not self.missing


def assess(
    receiver: str,
    kudos: Sequence[Given],
    companies: Mapping[str, str | None],
    evidence: Sequence[str],
    rule: Rule,
    now: datetime,
    found_flags: Flags | None = None,
) -> Assessment:
    """`receiver` against `rule`, from the community's standing kudos in the status
    window, the givers' companies (from their profiles) and the receiver's evidence
    (labels of contributions recorded by other features)."""
    found_flags = found_flags if found_flags is not None else flags(kudos)
    counted: list[Given] = []
    without_reason = flagged = 0
    for given in kudos:
        if given.receiver != receiver or given.giver == receiver:
            continue
        if not given.has_reason:
            without_reason += 1
        elif found_flags.excludes(given.giver, receiver):
            flagged += 1
        else:
            counted.append(given)
    # Only kudos that count make a later one a repeat.
    weights = repeat_weights(counted)
    givers = {given.giver for given in counted}
    known_companies = {
        company.strip().lower() for giver in givers if (company := companies.get(giver))
    }
    weighted = round(sum(weights[given.kudos_id] for given in counted), 2)
    first = min((given.at for given in counted), default=None)
    days = (now - first).days if first is not None else 0
    missing = tuple(
        name
        for name, short in (
            ("kudos", weighted < rule.min_kudos),
            ("givers", len(givers) < rule.min_givers),
            ("companies", len(known_companies) < rule.min_companies),
            ("days", days < rule.min_days),
            ("evidence", len(evidence) < rule.min_evidence),
        )
        if short
    )
    return Assessment(
        rule=rule,
        weighted_kudos=weighted,
        givers=len(givers),
        companies=len(known_companies),
        days=days,
        evidence=tuple(evidence),
        without_reason=without_reason,
        flagged=flagged,
        givers_without_company=sum(1 for giver in givers if not companies.get(giver)),
        missing=missing,
    )


@dataclass(frozen=True, slots=True)
class Review:
    keep: bool
    months_below: int


def monthly_review(months_below: int, met: bool) -> Review:
    """Hysteresis: a month at or above the bar resets the count; the status goes
    only after MONTHS_BELOW_TO_DROP reviews in a row below it."""
    if met:
        return Review(keep=True, months_below=0)
    below = months_below + 1
    return Review(keep=below < MONTHS_BELOW_TO_DROP, months_below=below)


@dataclass(frozen=True, slots=True)
class BoardEntry:
    user_id: str
    givers: int
    change: int = 0


def board(kudos: Iterable[Given], hidden: set[str], limit: int) -> list[BoardEntry]:
    """Members by distinct givers, most first (ties by name order of id)."""
    givers: dict[str, set[str]] = defaultdict(set)
    for given in kudos:
        if given.receiver not in hidden and given.giver != given.receiver:
            givers[given.receiver].add(given.giver)
    ranked = sorted(givers.items(), key=lambda item: (-len(item[1]), item[0]))
    return [BoardEntry(user_id, len(names)) for user_id, names in ranked[:limit]]


def rising(
    this_month: Iterable[Given], last_month: Iterable[Given], hidden: set[str], limit: int
) -> list[BoardEntry]:
    """Members with more distinct givers this month than last, by the gain."""
    now = {entry.user_id: entry.givers for entry in board(this_month, hidden, 10**9)}
    before = {entry.user_id: entry.givers for entry in board(last_month, hidden, 10**9)}
    gains = [
        BoardEntry(user_id, count, count - before.get(user_id, 0))
        for user_id, count in now.items()
        if count > before.get(user_id, 0)
    ]
    gains.sort(key=lambda entry: (-entry.change, -entry.givers, entry.user_id))
    return gains[:limit]
