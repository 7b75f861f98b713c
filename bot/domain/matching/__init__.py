"""Kindred's matching engine: pure, synchronous, no I/O, no platform SDK (DESIGN.md §5).

Three solvers; features call only these entry points, with frozen dataclass inputs and
results that carry their quality figures.

Pairs (coffee): `make_groups(candidates, history, PairingConfig) -> PairingResult`.
  `candidates` is a sequence of `Candidate` or, for big communities, a `CandidateTable`
  (columns a job keeps between rounds and updates with `changed`). `History` crosses the
  boundary as arrays: member ids plus (first, second, rounds_ago) per met pair, built from
  storage or carried forward with `History.after(groups, in_trio=..., forget=...)`;
  `History.from_pairs` takes a small mapping. Blocks are hard; then, in strict priority
  order: trio members in the trio again; a partner from the previous round ("never the
  same person twice in a row"); too little shared working time; met within the repeat
  window (recent worst); met before; same company; same industry. `RoundQuality` counts
  each. `shared_working_hours` is the overlap rule, for callers that explain a pairing.

Groups of k..m (masterminds): `make_cohorts(applicants, CohortConfig) -> CohortResult`.
  `Applicant` has a company, challenge tags, a seniority level and weekly UTC minute
  intervals of availability. In priority order: same-company pairs (hard where the
  population allows), pairs grouped before (`CohortConfig.past_groups`, so re-forming a
  cycle is the same call), no common slot of `min_slot_minutes`, no shared tag, one level.
  Each `Cohort` carries its shared tags, common slot and company mix; `left_out` says who
  and why when the count cannot be split. `backfill_seat` picks the applicant who best
  fills one open seat (`BackfillResult`).

Assignment with capacities (mentorship):
  `assign_mentors(mentees, mentors, AssignmentConfig) -> AssignmentResult`. Each `Mentee`
  gets at most one `Mentor`, each mentor at most `capacity` (1..5); maximises fit (shared
  topics, seniority gap the right way, other company, time overlap) less a spread term,
  over each mentee's top-k candidates, with hard exclusions (same company unless allowed,
  blocked, ended badly, too few shared topics); a second pass seats whoever that leaves
  out at the mentors with free seats, over every mentor. Each `MentorMatch` carries its
  reasons in words, and each unmatched mentee the reason that is true.

Layout: `model` (pairs' value types), `costs` (pair costs as arrays, history look-ups),
`engine` (placement and quality), `dense` (small communities: full cost matrix, swap search
and Edmonds matching from `matching`), `sparse` (big communities: batched swap search),
`groups` (cohorts), `assignment` (mentors).
"""

from bot.domain.matching.assignment import (
    AssignmentConfig,
    AssignmentQuality,
    AssignmentResult,
    Mentee,
    Mentor,
    MentorMatch,
    assign_mentors,
)
from bot.domain.matching.costs import shared_working_hours
from bot.domain.matching.engine import make_groups
from bot.domain.matching.groups import (
    Applicant,
    BackfillResult,
    Cohort,
    CohortConfig,
    CohortQuality,
    CohortResult,
    backfill_seat,
    make_cohorts,
)
from bot.domain.matching.model import (
    Candidate,
    CandidateTable,
    History,
    PairingConfig,
    PairingResult,
    RoundQuality,
)

__all__ = [
    "Applicant",
    "AssignmentConfig",
    "AssignmentQuality",
    "AssignmentResult",
    "BackfillResult",
    "Candidate",
    "CandidateTable",
    "Cohort",
    "CohortConfig",
    "CohortQuality",
    "CohortResult",
    "History",
    "Mentee",
    "Mentor",
    "MentorMatch",
    "PairingConfig",
    "PairingResult",
    "RoundQuality",
    "assign_mentors",
    "backfill_seat",
    "make_cohorts",
    "make_groups",
    "shared_working_hours",
]
