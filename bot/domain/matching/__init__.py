"""Kindred's pairing engine: pure, synchronous, no I/O, no platform SDK (DESIGN.md §5).

`make_groups` turns one round's candidates, their history and a config into groups. Blocks
are hard; then, in strict priority order, it minimises: trio members who were in the trio
last round, pairs with too little shared working time, pairs that met before (recently
worst), same-company pairs, same-industry pairs.

Layout: `model` (the value types), `costs` (pair costs as arrays, history look-ups),
`engine` (placement and quality), `dense` (small communities: full cost matrix, swap search
and Edmonds matching from `matching`), `sparse` (big communities: batched swap search).
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
