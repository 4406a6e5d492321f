"""What a ranking is, in one place: tiers of response ids, best group first (a group of several is a tie),
listing each of the prompt's responses exactly once. Pure: no database, no FastAPI."""

from collections.abc import Collection

Tiers = list[list[int]]  # a label, a gold or reference answer, a consensus


def tiers_problem(tiers: Tiers, responses: Collection[int]) -> str | None:
    """Why `tiers` is not a ranking of exactly `responses` (None when it is); callers raise their own error."""
    flat = [rid for tier in tiers for rid in tier]
    if any(not tier for tier in tiers):
        return "must not contain empty groups"
    if len(flat) != len(set(flat)) or set(flat) != set(responses):
        return f"must list each of the prompt's responses exactly once: expected {sorted(responses)}, got {flat}"
    return None


def order_changed(tiers: Tiers | None, shown: list[int]) -> bool:
    """Whether a label differs from the order the responses were shown in (README "My labels"): false only for a
    ranking that is exactly the shown order with no ties, or a pairwise choice of the response shown first, so
    a label submitted without touching anything is recognisable. A pairwise label stores [[chosen], [rejected]]
    (or [[a, b]] for a tie), so one comparison serves both kinds; a label with no ranking (only "none
    acceptable" or a flag) changed no order."""
    return tiers is not None and tiers != [[rid] for rid in shown]
