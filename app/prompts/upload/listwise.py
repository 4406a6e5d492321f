"""Listwise judgements (format "listwise"): one prompt, its K responses and a ranking of all of them, imported as a
reference label (an AI judge's or a dataset's ranking; researchers and admins see it, annotators never do).

    {"id": "q1", "prompt": "…", "responses": ["a", "b", "c"], "rank": [3, 1, 2]}

- "rank" (or "ranks", as the listwise export writes it): rank[i] is the place of responses[i], 1 = best; equal
  places are a tie. Places need not be consecutive ([1, 1, 3] is two tied best and a third).
- "ranking": tiers of indices into responses, best first ([[1], [2], [0]]), each index exactly once.
- The listwise export's rows (app/export/rows.py) carry both: they must agree. Its "prompt_id" is the id when there
  is no "id"; "models" names the responses' models; its other bookkeeping columns (response_ids, annotator_id,
  annotation_id, reference_source, split) are dropped, and any other key is kept as the prompt's metadata.
"prompt" and "responses" are read as in a prompt record (a string or a chat; strings or {"text", "model"} objects),
and K must fit the project's response bounds. Auto-detection: a record with "responses" and one of rank, ranks,
ranking is listwise. Where a judgement goes (an existing prompt or a new one) is app/prompts/references.py's rule.
"""

from app.prompts.upload.fields import Problems, kind


def is_listwise(obj: object) -> bool:
    return isinstance(obj, dict) and "responses" in obj and any(key in obj for key in ("rank", "ranks", "ranking"))


def listwise_places(obj: dict, count: int | None, problems: Problems) -> list[list[int]] | None:
    """The record's ranking as tiers of response indices, best first; None (and problems) when it has none or a
    bad one. `count`: the number of responses, None when they are unreadable (then only the shapes are checked)."""
    from_ranks = from_tiers = None
    given = [key for key in ("rank", "ranks") if obj.get(key) is not None]
    if len(given) == 2:
        problems.add("ranks", 'give "rank" or "ranks", not both')
        return None
    if given:
        from_ranks = _ranks(obj[given[0]], given[0], count, problems)
    if obj.get("ranking") is not None:
        from_tiers = _tiers(obj["ranking"], count, problems)
    if not given and obj.get("ranking") is None:
        problems.add("rank", 'is required: "rank" (the place of each response, 1 = best) or "ranking" (tiers of indices)')
        return None
    if from_ranks is not None and from_tiers is not None and from_ranks != from_tiers:
        problems.add("ranking", f'orders the responses differently from "{given[0]}"')
        return None
    return from_ranks if from_ranks is not None else from_tiers


def _ranks(value: object, field: str, count: int | None, problems: Problems) -> list[list[int]] | None:
    if not isinstance(value, list):
        problems.add(field, f"must be a list of places (1 = best), one per response, got {kind(value)}")
        return None
    bad = [i for i, v in enumerate(value) if isinstance(v, bool) or not isinstance(v, int) or v < 1]
    if bad:
        problems.add(f"{field}[{bad[0]}]", f"must be a whole number from 1 (best), got {value[bad[0]]!r}")
        return None
    if count is not None and len(value) != count:
        problems.add(field, f"has {len(value)} places for {count} responses; give one place per response")
        return None
    return [[i for i, v in enumerate(value) if v == place] for place in sorted(set(value))]


def _tiers(value: object, count: int | None, problems: Problems) -> list[list[int]] | None:
    if not isinstance(value, list) or not all(isinstance(tier, list) and tier for tier in value):
        problems.add("ranking", "must be a list of non-empty tiers (lists of response indices), best first")
        return None
    flat = [i for tier in value for i in tier]
    if any(isinstance(i, bool) or not isinstance(i, int) for i in flat):
        problems.add("ranking", "must hold response indices (whole numbers from 0)")
        return None
    if count is not None and sorted(flat) != list(range(count)):
        problems.add("ranking", f"must hold every response index 0 … {count - 1} exactly once, got {sorted(flat)}")
        return None
    return [sorted(tier) for tier in value]
