"""Agreement from the database: the labels `labels.py` loads through `metrics.py`, plus what only the
database knows (who the annotators are, time per task, skips, flags, gold accuracy, labels per day)."""

from collections import defaultdict
from statistics import median
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.agreement.labels import load_labels
from app.agreement.schemas import AgreementReport, AnnotatorRow, DayCount, Metric, ReferenceReport, SkipReasonCount
from app.annotation import overlap

if TYPE_CHECKING:
    from app.agreement.metrics import Convention
    from app.db import Database
# app.agreement.metrics (numpy) is imported where it is used, so the app starts without it.
from app.errors import NotFound, Unprocessable
from app.models import (
    Annotation,
    Assignment,
    AssignmentStatus,
    Project,
    ProjectKind,
    Prompt,
    ReferenceLabel,
    Response,
    User,
    shown_in,
)
from app.rankings import Tiers, tiers_problem
from app.reports import cache
from app.reports.stamp import note_change


def _agreement_with(reference: Tiers, tiers: Tiers, convention: "Convention" = "tie_half") -> float | None:
    """Share of response pairs ordered as the reference orders them, under a tie convention (metrics.py):
    tie_half scores a tie against a preference ½, tie_as_category 0, strict_only drops pairs where either tied."""
    rank_ref = {rid: i for i, tier in enumerate(reference) for rid in tier}
    rank = {rid: i for i, tier in enumerate(tiers) for rid in tier}
    ids = sorted(rank_ref.keys() & rank.keys())
    scores = []
    for x, i in enumerate(ids):
        for j in ids[x + 1 :]:
            s_ref = (rank_ref[i] > rank_ref[j]) - (rank_ref[i] < rank_ref[j])
            s = (rank[i] > rank[j]) - (rank[i] < rank[j])
            if convention == "tie_half":
                scores.append(1 - abs(s_ref - s) / 2)
            elif convention == "tie_as_category" or (s_ref and s):
                scores.append(float(s_ref == s))
    return sum(scores) / len(scores) if scores else None


REFERENCE_DEFINITION = (
    "Share of human labels that order the responses as the source's reference label does ({convention}); "
    "a label's score is its share of response pairs ordered alike."
)


def _reference_agreement(
    session: Session, project: Project
) -> tuple[list[ReferenceReport], dict[int, dict[str, dict[str, Metric]]]]:
    """Agreement of human labels with each reference source: a report per source, and per annotator (annotator ->
    source -> convention). A source is one more rater, never pooled into the human figures (reward-loop.md §4)."""
    from app.agreement.metrics import CONVENTIONS, DEFINITIONS

    rows = session.execute(
        select(ReferenceLabel.source, Annotation.annotator_id, ReferenceLabel.ranking, Annotation.ranking)
        .join(Prompt, Prompt.id == ReferenceLabel.prompt_id)
        .join(Annotation, Annotation.prompt_id == ReferenceLabel.prompt_id)
        .where(Prompt.project_id == project.id, Annotation.ranking.is_not(None))
    ).all()
    prompts = dict(
        session.execute(
            select(ReferenceLabel.source, func.count())
            .join(Prompt, Prompt.id == ReferenceLabel.prompt_id)
            .where(shown_in(project.id))
            .group_by(ReferenceLabel.source)
        ).all()
    )
    # source -> convention -> annotator (None: everyone) -> scores
    scores: dict[str, dict[str, dict[int | None, list[float]]]] = {
        source: {c: defaultdict(list) for c in CONVENTIONS} for source in prompts
    }
    labels: dict[str, int] = defaultdict(int)
    met: dict[int, set[str]] = defaultdict(set)  # annotator -> sources of the prompts they labelled
    for source, annotator_id, reference, tiers in rows:
        if tiers is None:  # the query leaves these out; this tells the type checker
            continue
        labels[source] += 1
        met[annotator_id].add(source)
        for convention in CONVENTIONS:
            if (score := _agreement_with(reference, tiers, convention)) is not None:
                scores[source][convention][None].append(score)
                scores[source][convention][annotator_id].append(score)

    def metric(source: str, convention: str, who: int | None) -> Metric:
        values = scores[source][convention].get(who, [])
        reason = None
        if not values and not labels[source]:
            reason = "no human label on a prompt this source labelled yet"
        elif not values:
            reason = "every comparison involves a tie, and strict_only drops those"
        return Metric(
            value=sum(values) / len(values) if values else None,
            reason=reason,
            n=len(values),
            definition=REFERENCE_DEFINITION.format(convention=DEFINITIONS[convention]),
        )

    reports = [
        ReferenceReport(
            source=source,
            prompts=prompts[source],
            labels=labels[source],
            **{f"agreement_{c}": metric(source, c, None) for c in CONVENTIONS},
        )
        for source in sorted(prompts)
    ]
    annotators: dict[int, dict[str, dict[str, Metric]]] = {
        a: {source: {str(c): metric(source, c, a) for c in CONVENTIONS} for source in sorted(sources)}
        for a, sources in met.items()
    }
    return reports, annotators


def _annotator_extras(session: Session, project: Project) -> dict[int, dict[str, Any]]:
    """Per annotator: identity, median seconds per task, skip and flag rates, gold accuracy."""
    extras: dict[int, dict[str, Any]] = defaultdict(
        lambda: {"times": [], "labels": 0, "flags": 0, "none_acceptable": 0, "skips": 0, "gold": [], "ranked": 0, "untouched": 0}
    )
    gold = dict(session.execute(select(Prompt.id, Prompt.gold_ranking).where(shown_in(project.id), Prompt.is_gold)).all())
    for annotator_id, prompt_id, ms, flag, none_ok, tiers, changed in session.execute(
        select(
            Annotation.annotator_id,
            Annotation.prompt_id,
            Annotation.time_spent_ms,
            Annotation.flag,
            Annotation.none_acceptable,
            Annotation.ranking,
            Annotation.order_changed,
        ).where(Annotation.project_id == project.id)
    ):
        e = extras[annotator_id]
        e["labels"] += 1
        e["flags"] += flag is not None
        e["none_acceptable"] += bool(none_ok)
        if ms is not None:
            e["times"].append(ms / 1000)
        if tiers:
            e["ranked"] += 1
            e["untouched"] += not changed
        if (answer := gold.get(prompt_id)) and tiers:
            e["gold"].append(_agreement_with(answer, tiers))
    for annotator_id, skips in session.execute(
        select(Assignment.annotator_id, func.count())
        .where(Assignment.project_id == project.id, Assignment.status == AssignmentStatus.skipped)
        .group_by(Assignment.annotator_id)
    ):
        extras[annotator_id]["skips"] = skips
    users = {u.id: u for u in session.scalars(select(User).where(User.id.in_(list(extras))))} if extras else {}
    result = {}
    for annotator_id, e in extras.items():
        tasks = e["labels"] + e["skips"]
        gold_scores = [g for g in e["gold"] if g is not None]
        result[annotator_id] = {
            "email": users[annotator_id].email if annotator_id in users else None,
            "name": users[annotator_id].display_name if annotator_id in users else None,
            "n_annotations": e["labels"],
            "median_seconds": round(median(e["times"]), 1) if e["times"] else None,
            "skip_rate": e["skips"] / tasks if tasks else None,
            "flag_rate": e["flags"] / e["labels"] if e["labels"] else None,
            "none_acceptable_rate": e["none_acceptable"] / e["labels"] if e["labels"] else None,
            "gold_accuracy": sum(gold_scores) / len(gold_scores) if gold_scores else None,
            "gold_labels": len(gold_scores),
            "ranked_labels": e["ranked"],
            "untouched_labels": e["untouched"],
        }
    return result


def _labels_per_day(session: Session, project: Project) -> list[DayCount]:
    day = func.date(Annotation.created_at)
    rows = session.execute(select(day, func.count()).where(Annotation.project_id == project.id).group_by(day).order_by(day))
    return [DayCount(day=str(d), labels=n) for d, n in rows]


def _skip_reasons(session: Session, project: Project) -> list[SkipReasonCount]:
    """Skips counted by their reason, most frequent first (then by reason)."""
    n = func.count().label("n")
    rows = session.execute(
        select(Assignment.skip_reason, n)
        .where(Assignment.project_id == project.id, Assignment.status == AssignmentStatus.skipped)
        .group_by(Assignment.skip_reason)
    ).all()
    return [SkipReasonCount(reason=r, skips=k) for r, k in sorted(rows, key=lambda row: (-row[1], row[0] or ""))]


def prompt_skips(*, session: Session, prompt_id: int) -> list[tuple[Assignment, User]]:
    """Who skipped one prompt, why and when, oldest first (researchers and admins only)."""
    rows = session.execute(
        select(Assignment, User)
        .join(User, User.id == Assignment.annotator_id)
        .where(Assignment.prompt_id == prompt_id, Assignment.status == AssignmentStatus.skipped)
        .order_by(Assignment.skipped_at, Assignment.id)
    )
    return [(assignment, user) for assignment, user in rows]


def project_report(*, session: Session, project: Project, disputed: int = 20) -> AgreementReport:
    """The one report the API, the dashboard, the CLI and the dataset card show."""
    from app.agreement.metrics import agreement_report

    labels, ratings = load_labels(session=session, project=project)
    kind: Literal["ranking", "pairwise"] = "ranking" if project.kind == ProjectKind.ranking else "pairwise"
    report = agreement_report(labels, kind=kind, ratings=ratings)
    extras = _annotator_extras(session, project)
    references, by_annotator = _reference_agreement(session, project)
    measured = {row.annotator_id for row in report.annotators}
    # Annotators with only skips / flags / none-acceptable have no statistics, only the database's figures.
    rows = report.annotators + [AnnotatorRow(annotator_id=a) for a in extras if a not in measured]
    report.annotators = [
        row.model_copy(update=extras.get(row.annotator_id, {}) | {"reference_agreements": by_annotator.get(row.annotator_id)})
        for row in rows
    ]
    external = dict(session.execute(select(Prompt.id, Prompt.external_id).where(Prompt.project_id == project.id)).all())
    for row in report.prompts:
        row.external_id = external.get(row.prompt_id)
    scored = [p for p in report.prompts if p.agreement is not None]
    report.most_disputed = sorted(scored, key=lambda p: (p.agreement, -p.n_annotators, p.prompt_id))[:disputed]
    report.summary.ranked_labels = sum(row.ranked_labels for row in report.annotators)
    report.summary.untouched_labels = sum(row.untouched_labels for row in report.annotators)
    report.references = references
    report.labels_per_day = _labels_per_day(session, project)
    report.skip_reasons = _skip_reasons(session, project)
    report.project_id, report.project_name = project.id, project.name
    return report


def _shown_prompt(session: Session, project: Project, prompt_id: int) -> Prompt:
    """The project's prompt `prompt_id`, unless it is elsewhere or its import is still loading (NotFound)."""
    prompt = session.scalar(select(Prompt).where(Prompt.id == prompt_id, shown_in(project.id)))
    if prompt is None:
        raise NotFound("Prompt not found")
    return prompt


def cached_report(database: "Database", project_id: int) -> AgreementReport:
    """`project_report` through the report cache (app/reports/cache.py): computed when the project's data changed."""
    return cache.get_or_compute(
        database,
        kind="agreement",
        project_id=project_id,
        params=None,
        model=AgreementReport,
        compute=lambda session, project: project_report(session=session, project=project),
    )


def set_gold(*, session: Session, project: Project, prompt_id: int, ranking: Tiers | None) -> Prompt:
    """Mark a prompt as gold with its known answer (tiers of response ids), or unmark it (ranking=None)."""
    prompt = _shown_prompt(session, project, prompt_id)
    if ranking is not None:
        ids = set(session.scalars(select(Response.id).where(Response.prompt_id == prompt.id)))
        if problem := tiers_problem(ranking, ids):
            raise Unprocessable(f"`ranking` {problem}")
    overlap.mark_gold(prompt, ranking)
    note_change(session, project.id)  # reports read gold answers (gold accuracy)
    return prompt


def prompt_annotations(*, session: Session, project: Project, prompt_id: int) -> dict[str, Any]:
    """Every label of one prompt side by side, with annotators named (researchers and admins only)."""
    prompt = _shown_prompt(session, project, prompt_id)
    responses = list(session.scalars(select(Response).where(Response.prompt_id == prompt.id).order_by(Response.position)))
    rows = session.execute(
        select(Annotation, User)
        .join(User, User.id == Annotation.annotator_id)
        .where(Annotation.prompt_id == prompt.id)
        .order_by(Annotation.id)
    ).all()
    from app.agreement.metrics import prompt_agreement

    labels, _ = load_labels(session=session, project=project, prompt_ids=[prompt.id])
    scores = prompt_agreement(labels)
    return {
        "prompt": prompt,
        "responses": responses,
        "labels": [
            {"annotation": a, "annotator": u, "rank": {rid: i + 1 for i, tier in enumerate(a.ranking or []) for rid in tier}}
            for a, u in rows
        ],
        "agreement": scores[0] if scores else None,
        "skips": prompt_skips(session=session, prompt_id=prompt.id),
        "gold_rank": {rid: i + 1 for i, tier in enumerate(prompt.gold_ranking or []) for rid in tier},
        # source -> response id -> place (1 = best), every reference source of the prompt by name
        "reference_ranks": {
            source: {rid: i + 1 for i, tier in enumerate(ranking) for rid in tier}
            for source, ranking in session.execute(
                select(ReferenceLabel.source, ReferenceLabel.ranking)
                .where(ReferenceLabel.prompt_id == prompt.id)
                .order_by(ReferenceLabel.source)
            ).all()
        },
    }
