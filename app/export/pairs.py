"""From labels to chosen/rejected pairs."""
from collections.abc import Iterator


def pairs_from_tiers(tiers: list[list[int]]) -> Iterator[tuple[int, int]]:
    """Every (better, worse) pair of a ranking: K responses without ties give K·(K−1)/2 pairs.

    Responses in the same tier are tied and give no pair.
    """
    for i, better_tier in enumerate(tiers):
        for worse_tier in tiers[i + 1:]:
            for better in better_tier:
                for worse in worse_tier:
                    yield better, worse
