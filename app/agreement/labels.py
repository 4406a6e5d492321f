"""A project's labels as the plain values `metrics.py` takes (one query, no statistics here), and one prompt's
agreement from them: what the report and the adaptive-overlap rule (app.annotation.overlap) both read."""

from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal, TypeAlias, cast

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from app.models import Annotation, Project, ProjectKind, Prompt, Response, shown_in
from app.rankings import Tiers

if TYPE_CHECKING:
    from app.agreement.metrics import PairwiseLabel, RankingLabel, RatingLabel
# app.agreement.metrics (numpy) is imported where it is used, so the app starts without it.


def _response_ids(session: Session, prompt_ids: Sequence[int] | None, project: Project) -> dict[int, list[int]]:
    """Response ids per prompt in upload order (the canonical A/B order of pairwise labels)."""
    query = select(Response.prompt_id, Response.id).order_by(Response.prompt_id, Response.position)
    if prompt_ids is None:
        query = query.join(Prompt, Prompt.id == Response.prompt_id).where(shown_in(project.id))
    else:
        query = query.where(Response.prompt_id.in_(prompt_ids))
    by_prompt: dict[int, list[int]] = defaultdict(list)
    for prompt_id, response_id in session.execute(query):
        by_prompt[prompt_id].append(response_id)
    return by_prompt


def to_label(
    kind: str,
    prompt_id: int,
    annotator_id: int,
    tiers: Tiers,
    shown: list[int] | None,
    strength: int | None,
    responses: list[int],
) -> "RankingLabel | PairwiseLabel":
    from app.agreement.metrics import PairwiseLabel, RankingLabel

    if kind == ProjectKind.ranking:
        return RankingLabel(prompt_id, annotator_id, tiers, shown)
    a, b = responses
    choice: Literal["a", "b", "tie"] = "tie" if len(tiers) == 1 else ("a" if tiers[0] == [a] else "b")
    return PairwiseLabel(prompt_id, annotator_id, a, b, choice, strength, shown)


# One project's labels, all of its kind (the metrics take either, never a mix).
Labels: TypeAlias = "Sequence[RankingLabel] | Sequence[PairwiseLabel]"


def load_labels(
    *, session: Session, project: Project, prompt_ids: Sequence[int] | None = None
) -> "tuple[Labels, list[RatingLabel]]":
    from app.agreement.metrics import RatingLabel

    query = select(
        Annotation.prompt_id,
        Annotation.annotator_id,
        Annotation.ranking,
        Annotation.shown_order,
        Annotation.strength,
        Annotation.ratings,
    ).where(Annotation.project_id == project.id, Annotation.ranking.is_not(None))
    if prompt_ids is not None:
        query = query.where(Annotation.prompt_id.in_(prompt_ids))
    rows = session.execute(query.order_by(Annotation.prompt_id, Annotation.id)).all()
    responses = _response_ids(session, prompt_ids, project) if project.kind == ProjectKind.pairwise else {}
    labels: list[RankingLabel | PairwiseLabel] = []
    ratings: list[RatingLabel] = []
    for prompt_id, annotator_id, tiers, shown, strength, rated in rows:
        if tiers is None:  # the query leaves these out; this tells the type checker
            continue
        labels.append(to_label(project.kind, prompt_id, annotator_id, tiers, shown, strength, responses.get(prompt_id, [])))
        for criterion, values in (rated or {}).items():
            ratings.extend(RatingLabel(prompt_id, annotator_id, criterion, int(rid), float(v)) for rid, v in values.items())
    return cast("Labels", labels), ratings  # to_label gives every row the project's kind


def prompt_agreement(*, session: Session, project: Project, prompt_id: int) -> float | None:
    """The prompt's agreement rate (tie_half, as on the prompt page), or None with fewer than two labels."""
    from app.agreement.metrics import prompt_agreement as rows

    labels, _ = load_labels(session=session, project=project, prompt_ids=[prompt_id])
    scores = rows(labels)
    return scores[0].agreement if scores else None


# Built once, run on the session's connection: it runs on every submit (see app.annotation.service).
_STORE_AGREEMENT = update(Prompt).where(Prompt.id == bindparam("prompt")).values(agreement=bindparam("value"))


def refresh_agreement(*, session: Session, project: Project, prompt_id: int, labels: int | None = None) -> float | None:
    """Store the prompt's agreement (the report's per-prompt value) after a label: what the prompt browser sorts on.
    One prompt's labels, a few rows: cheap enough for the submit path. `labels`: how many the prompt has now, when
    the caller knows (the submit's count). With one there is nothing to do: no agreement before it (no labels) and
    none after it, so nothing is read or written (on the benchmark's first labels this read, the metric's set-up and
    the write were a quarter of a label's CPU)."""
    if labels is not None and labels < 2:
        return None
    agreement = prompt_agreement(session=session, project=project, prompt_id=prompt_id)
    session.connection().execute(_STORE_AGREEMENT, {"prompt": prompt_id, "value": agreement})
    held = session.identity_map.get(session.identity_key(Prompt, prompt_id))
    if held is not None:  # the session's copy says what the row says
        set_committed_value(held, "agreement", agreement)
    return agreement
