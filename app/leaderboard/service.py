"""The leaderboard from the database: labels -> decisions between models (decisions.py) -> Bradley–Terry ratings
(bradley_terry.py). Only loading and the options' checks against the project live here."""

from collections import defaultdict

import numpy as np
import orjson
from sqlalchemy import Text, cast, func, select
from sqlalchemy.orm import Session

from app.agreement.labels import to_label
from app.db import Database
from app.errors import Unprocessable
from app.leaderboard import bradley_terry as bt
from app.leaderboard.decisions import DecisionList, tiers_from_scores
from app.leaderboard.schemas import Leaderboard, LeaderboardOptions, LeftOut, MatrixCell, ModelRating
from app.models import Annotation, Project, Prompt, Response, User, shown_in
from app.reports import cache


def _loads(text: str | None):  # JSON read as text and decoded with orjson: faster than the driver (app/export/rows.py)
    return None if text is None else orjson.loads(text)


def _response_models(session: Session, project: Project) -> tuple[dict[int, str | None], dict[int, list[int]]]:
    """Each response's model, and each prompt's response ids in upload order (the A/B order of pairwise labels)."""
    models: dict[int, str | None] = {}
    by_prompt: dict[int, list[int]] = defaultdict(list)
    for prompt_id, response_id, model in session.execute(
        select(Response.prompt_id, Response.id, Response.model)
        .join(Prompt, Prompt.id == Response.prompt_id)
        .where(shown_in(project.id))
        .order_by(Response.prompt_id, Response.position)
    ):
        models[response_id] = model
        by_prompt[prompt_id].append(response_id)
    return models, by_prompt


def check(*, session: Session, project: Project, options: LeaderboardOptions) -> None:
    """What the options model cannot know alone: whether the project has this criterion and these annotators."""
    if options.criterion is not None:
        names = [c["name"] for c in project.rating_criteria or []]
        if options.criterion not in names:
            have = f"this project's criteria: {', '.join(names)}" if names else "this project has no rating criteria"
            raise Unprocessable(f"criterion: unknown criterion {options.criterion!r} ({have})")
    if options.exclude_annotator:
        labelled = set(
            session.scalars(
                select(Annotation.annotator_id)
                .where(Annotation.project_id == project.id, Annotation.annotator_id.in_(options.exclude_annotator))
                .distinct()
            )
        )
        if unknown := sorted(set(options.exclude_annotator) - labelled):
            raise Unprocessable(f"exclude_annotator: no labels in this project by annotator id {', '.join(map(str, unknown))}")


def load_decisions(*, session: Session, project: Project, options: LeaderboardOptions) -> tuple[DecisionList, LeftOut, int]:
    """The decisions the options keep, what was left out, and how many annotators the decisions come from."""
    from app.agreement.metrics import prompt_agreement

    models, by_prompt = _response_models(session, project)
    # With a criterion the decisions come from the ratings; the ranking is still read for min_agreement.
    columns = [cast(Annotation.ranking, Text).label("tiers")]
    if options.criterion is not None:
        columns.append(cast(Annotation.ratings, Text).label("ratings"))
    rows = session.execute(
        select(Annotation.prompt_id, Annotation.annotator_id, *columns)
        .where(Annotation.project_id == project.id, Annotation.ranking.is_not(None))
        .order_by(Annotation.prompt_id, Annotation.id)
    ).all()
    left_out = LeftOut()
    excluded = set(options.exclude_annotator)
    if excluded:
        left_out.excluded_labels = sum(1 for row in rows if row[1] in excluded)
        rows = [row for row in rows if row[1] not in excluded]
    parsed = [(row[0], row[1], orjson.loads(row[2]), _loads(row[3]) if len(row) > 3 else None) for row in rows]
    if options.min_agreement is not None:
        # The agreement report's per-prompt agreement, over the labels of the annotators kept.
        labels = [to_label(project.kind, p, a, ranking, None, None, by_prompt.get(p, [])) for p, a, ranking, _ in parsed]
        agreement = {row.prompt_id: row.agreement for row in prompt_agreement(labels)}  # type: ignore[arg-type]
        kept = {p for p, value in agreement.items() if value is not None and value >= options.min_agreement}
        left_out.prompts_below_agreement = len(agreement) - len(kept)
        parsed = [row for row in parsed if row[0] in kept]
    decisions = DecisionList()
    annotators: set[int] = set()
    for prompt_id, annotator_id, tiers, ratings in parsed:
        if options.criterion is not None:
            scores = (ratings or {}).get(options.criterion)
            if not scores:
                continue  # this label did not rate the criterion
            tiers = tiers_from_scores({int(rid): float(v) for rid, v in scores.items()})
        before = len(decisions.score)
        decisions.add_label(prompt_id, tiers, models)
        if len(decisions.score) > before:
            annotators.add(annotator_id)
    left_out.same_model, left_out.no_model = decisions.same_model, decisions.no_model
    return decisions, left_out, len(annotators)


def leaderboard(*, session: Session, project: Project, options: LeaderboardOptions) -> Leaderboard:
    """The one leaderboard the API, the page and the CLI show."""
    check(session=session, project=project, options=options)
    decisions, left_out, annotators = load_decisions(session=session, project=project, options=options)
    names = sorted(set(decisions.first) | set(decisions.second))
    if options.baseline is not None and options.baseline not in names:
        raise Unprocessable(f"baseline: model {options.baseline!r} has no decisions here (models: {', '.join(names) or 'none'})")
    index = {name: i for i, name in enumerate(names)}
    n = len(names)
    a = np.array([index[m] for m in decisions.first], dtype=np.int64)
    b = np.array([index[m] for m in decisions.second], dtype=np.int64)
    score = np.array(decisions.score, dtype=np.float64)
    _, prompt = np.unique(np.array(decisions.prompt, dtype=np.int64), return_inverse=True)
    anchor = index[options.baseline] if options.baseline is not None else None
    ratings = bt.rate(a, b, score, prompt.astype(np.int64), n, anchor=anchor, resamples=options.resamples, seed=options.seed)
    counts = bt.tally(a, b, score, n)
    order = sorted(range(n), key=lambda i: (-ratings.rating[i], names[i]))
    models = [
        ModelRating(
            model=names[i],
            rating=float(ratings.rating[i]),
            ci_low=float(ratings.ci_low[i]),
            ci_high=float(ratings.ci_high[i]),
            decisions=int(counts.decisions[i].sum()),
            wins=int(counts.wins[i].sum()),
            losses=int(counts.wins[:, i].sum()),
            ties=int(counts.ties[i].sum()),
        )
        for i in order
    ]
    matrix = [
        [
            MatrixCell(
                model=names[i],
                opponent=names[j],
                decisions=int(counts.decisions[i, j]),
                wins=int(counts.wins[i, j]),
                losses=int(counts.wins[j, i]),
                ties=int(counts.ties[i, j]),
                win_rate=float((counts.wins[i, j] + 0.5 * counts.ties[i, j]) / counts.decisions[i, j])
                if i != j and counts.decisions[i, j]
                else None,
            )
            for j in order
        ]
        for i in order
    ]
    return Leaderboard(
        project_id=project.id,
        project_name=project.name,
        options=options,
        anchor=options.baseline or "mean of all models",
        prior=bt.PRIOR,
        decisions=len(score),
        prompts=len(set(decisions.prompt)),
        annotators=annotators,
        models=models,
        matrix=matrix,
        left_out=left_out,
        reason=None if n else "no decision between responses of two different models yet",
    )


def cached_leaderboard(database: Database, project_id: int, options: LeaderboardOptions) -> Leaderboard:
    """`leaderboard` through the report cache (app/reports/cache.py), one entry per set of options."""
    return cache.get_or_compute(
        database,
        kind="leaderboard",
        project_id=project_id,
        params=options,
        model=Leaderboard,
        compute=lambda session, project: leaderboard(session=session, project=project, options=options),
    )


def annotators_with_labels(*, session: Session, project: Project) -> list[tuple[int, str, int]]:
    """(id, email, labels) of everyone who labelled the project, for the page's exclude checkboxes."""
    return [
        (user_id, email, labels)
        for user_id, email, labels in session.execute(
            select(User.id, User.email, func.count(Annotation.id))
            .join(Annotation, Annotation.annotator_id == User.id)
            .where(Annotation.project_id == project.id, Annotation.ranking.is_not(None))
            .group_by(User.id, User.email)
            .order_by(User.email)
        )
    ]
