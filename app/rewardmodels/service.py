"""Reward models of a project: uploading a score file (all or nothing, errors by line) and the evaluation report
(docs/reward-models.md). Loading and matching live here; the figures are metrics.py's."""

import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import BinaryIO

import orjson
from sqlalchemy import Text, cast, delete, func, insert, select
from sqlalchemy.orm import Session

from app.db import Database
from app.errors import Conflict, NotFound, Unprocessable
from app.models import Annotation, Project, Prompt, Response, RewardModel, RewardModelScore, User, shown_in
from app.prompts.upload import ErrorCollector, ParseError
from app.reports import cache
from app.reports.stamp import note_change
from app.rewardmodels.parsing import ScoreRow, parse_scores
from app.rewardmodels.schemas import RewardModelList, RewardModelReport, UploadResult

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")  # it is a URL path segment


def check_name(name: str) -> str:
    if not NAME.fullmatch(name):
        raise Unprocessable("name: 1–100 letters, digits, '.', '_' or '-', starting with a letter or digit")
    return name


def get(*, session: Session, project: Project, name: str) -> RewardModel:
    model = session.scalar(select(RewardModel).where(RewardModel.project_id == project.id, RewardModel.name == name))
    if model is None:
        raise NotFound(f"No reward model named {name!r} in this project")
    return model


@dataclass
class UploadOutcome:
    result: UploadResult | None
    errors: list[str] = field(default_factory=list)
    total_errors: int = 0


class _Matcher:
    """The project's prompts and responses, to resolve what each row names."""

    def __init__(self, session: Session, project: Project) -> None:
        self.session, self.project_id = session, project.id
        self.by_external: dict[str, int] = {
            external_id: prompt_id
            for external_id, prompt_id in session.execute(select(Prompt.external_id, Prompt.id).where(shown_in(project.id)))
        }
        self.responses: dict[int, list[tuple[int, str]]] = defaultdict(list)  # prompt -> (id, text) by position
        self.prompt_of: dict[int, int] = {}
        for prompt_id, response_id, text in session.execute(
            select(Response.prompt_id, Response.id, Response.text)
            .join(Prompt, Prompt.id == Response.prompt_id)
            .where(shown_in(project.id))
            .order_by(Response.prompt_id, Response.position)
        ):
            self.responses[prompt_id].append((response_id, text))
            self.prompt_of[response_id] = prompt_id
        self._by_content: dict[bytes, list[int]] | None = None

    @property
    def by_content(self) -> dict[bytes, list[int]]:
        """Prompts by their messages, read on the first TRL-shaped row (a file of plain rows never needs them)."""
        if self._by_content is None:
            self._by_content = defaultdict(list)
            for prompt_id, messages in self.session.execute(select(Prompt.id, Prompt.messages).where(shown_in(self.project_id))):
                self._by_content[orjson.dumps(messages)].append(prompt_id)
        return self._by_content

    def _by_text(self, prompt_id: int, text: str) -> list[int]:
        return [rid for rid, t in self.responses[prompt_id] if t == text]

    def resolve(self, row: ScoreRow) -> int | ParseError:
        """The response id a row scores, or the error naming its line and field."""
        ref = row.response
        if row.messages is not None:  # a TRL-shaped pair: the prompt by content, then the two texts in it
            assert ref.text is not None and row.partner is not None
            candidates = [
                p
                for p in self.by_content.get(orjson.dumps(row.messages), [])
                if self._by_text(p, ref.text) and self._by_text(p, row.partner)
            ]
            if not candidates:
                return ParseError(row.location, "prompt", "no prompt of this project has this content and these two responses")
            if len(candidates) > 1:
                return ParseError(
                    row.location, "prompt", f"ambiguous: {len(candidates)} prompts have this content and these two responses"
                )
            prompt_id = candidates[0]
            where = "chosen" if row.field == "score_chosen" else "rejected"
        else:
            prompt = self.by_external.get(row.prompt_id or "")
            if prompt is None:
                return ParseError(row.location, "prompt_id", f"no prompt with id {row.prompt_id!r} in this project")
            prompt_id, where = prompt, "response"
        responses = self.responses[prompt_id]
        if ref.response_id is not None:
            if self.prompt_of.get(ref.response_id) != prompt_id:
                return ParseError(
                    row.location, "response.response_id", f"response {ref.response_id} is not a response of this prompt"
                )
            return ref.response_id
        if ref.position is not None:
            if ref.position >= len(responses):
                return ParseError(
                    row.location,
                    where,
                    f"the prompt has {len(responses)} responses (index 0–{len(responses) - 1}), got {ref.position}",
                )
            return responses[ref.position][0]
        matches = self._by_text(prompt_id, ref.text or "")
        if not matches:
            return ParseError(row.location, where, "no response of this prompt has this text")
        if len(matches) > 1:
            return ParseError(
                row.location,
                where,
                f"ambiguous: {len(matches)} responses of this prompt have this text; name it by index or response_id",
            )
        return matches[0]


def upload(
    *,
    session: Session,
    project: Project,
    name: str,
    stream: BinaryIO,
    filename: str,
    user: User | None,
    replace: bool = False,
    depth: int = 32,
) -> UploadOutcome:
    """Store a score file under `name`: every row resolved, or nothing stored (`errors`, by line). An existing name is
    a 409 unless `replace`."""
    check_name(name)
    existing = session.scalar(select(RewardModel).where(RewardModel.project_id == project.id, RewardModel.name == name))
    if existing is not None and not replace:
        raise Conflict(f"A reward model named {name!r} exists in this project; upload with replace=true to replace it")
    collector = ErrorCollector()
    matcher = _Matcher(session, project)
    scores: dict[int, tuple[float, ScoreRow]] = {}
    for row in parse_scores(stream, depth=depth):  # one pass, so the errors come in line order
        if isinstance(row, ParseError):
            collector.add(row)
            continue
        resolved = matcher.resolve(row)
        if isinstance(resolved, ParseError):
            collector.add(resolved)
            continue
        earlier = scores.get(resolved)
        if earlier is None:
            scores[resolved] = (row.score, row)
        elif earlier[0] != row.score:  # the same score twice (a response in several pairs) is fine
            collector.add(
                ParseError(
                    row.location,
                    row.field,
                    f"scores response {resolved} {row.score:g}, but {earlier[1].location} "
                    f'(field "{earlier[1].field}") gave it {earlier[0]:g}',
                )
            )
    if not collector.ok:
        return UploadOutcome(None, collector.messages(), collector.total_errors)
    if existing is not None:
        session.delete(existing)
        session.flush()
    model = RewardModel(
        project_id=project.id,
        name=name,
        filename=filename[:500],
        scored=len(scores),
        created_by_id=user.id if user else None,
    )
    session.add(model)
    session.flush()
    items = [{"reward_model_id": model.id, "response_id": rid, "score": s} for rid, (s, _) in scores.items()]
    for start in range(0, len(items), 10_000):
        session.execute(insert(RewardModelScore), items[start : start + 10_000])
    note_change(session, project.id)  # the cached reports (app/reports/stamp.py) do not see scores otherwise
    return UploadOutcome(UploadResult(name=name, filename=model.filename, scored=len(scores), replaced=existing is not None))


def remove(*, session: Session, project: Project, name: str) -> None:
    model = get(session=session, project=project, name=name)
    session.execute(delete(RewardModelScore).where(RewardModelScore.reward_model_id == model.id))
    session.delete(model)
    session.flush()
    note_change(session, project.id)  # the cached reports (app/reports/stamp.py) do not see scores otherwise


def human_decisions(*, session: Session, project: Project, method: str):
    """Every decision of the project's labels, the consensus rankings' pairs, and what the ceiling and the breakdowns
    need (metrics.prepare). Decisions come from the labels as the leaderboard takes them (label_pairs)."""
    import numpy as np

    from app.agreement.consensus import borda_pairs
    from app.leaderboard.decisions import label_pairs_from_json
    from app.rewardmodels import metrics

    # Core, not ORM, execution: a million decisions come from some 10^5 rows, and ORM row loading doubled the time.
    connection = session.connection()
    rows = connection.execute(
        select(Annotation.prompt_id, Annotation.annotator_id, cast(Annotation.ranking, Text))
        .where(Annotation.project_id == project.id, Annotation.ranking.is_not(None))
        .order_by(Annotation.prompt_id, Annotation.id)
    ).all()
    pairs = label_pairs_from_json([row[2] for row in rows])
    prompt = np.array([row[0] for row in rows], dtype=np.int64)[pairs.label] if rows else np.zeros(0, dtype=np.int64)
    # Borda, the default, is vectorised over every prompt at once; the other methods go prompt by prompt.
    merged = borda_pairs(pairs.lo, pairs.hi, pairs.sign) if method == "borda" else _consensus_pairs(rows, method)
    # One row a model with its response ids as text: a row a response cost a third of the whole report.
    models = {
        model: np.fromstring(ids, dtype=np.int64, sep=",")
        for model, ids in connection.execute(
            select(Response.model, func.aggregate_strings(cast(Response.id, Text), ","))
            .join(Prompt, Prompt.id == Response.prompt_id)
            .where(shown_in(project.id))
            .group_by(Response.model)
        )
    }
    return metrics.prepare(prompt=prompt, lo=pairs.lo, hi=pairs.hi, sign=pairs.sign, models=models, consensus=merged)


def _consensus_pairs(rows, method: str):
    """The other consensus methods, prompt by prompt (app.agreement.consensus), as the export merges labels."""
    from app.agreement.consensus import consensus
    from app.agreement.metrics import RankingLabel
    from app.export.rows import CONSENSUS_METHODS
    from app.leaderboard.decisions import label_pairs

    by_prompt: dict[int, list[RankingLabel]] = defaultdict(list)
    for prompt_id, annotator_id, tiers in rows:
        by_prompt[prompt_id].append(RankingLabel(prompt_id, annotator_id, orjson.loads(tiers), None))
    merge = CONSENSUS_METHODS[method]  # type: ignore[index]
    merged = label_pairs([consensus(labels, merge).tiers for labels in by_prompt.values()])
    return merged.lo, merged.hi, merged.sign


def _report(session: Session, project: Project, model: RewardModel, humans, method: str) -> RewardModelReport:
    import numpy as np

    from app.rewardmodels import metrics

    rows = (
        session.connection()
        .execute(select(RewardModelScore.response_id, RewardModelScore.score).where(RewardModelScore.reward_model_id == model.id))
        .fetchall()
    )
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    values = np.fromiter((r[1] for r in rows), dtype=np.float64, count=len(rows))
    e = metrics.evaluate(humans, ids, values)

    def figures(d):
        return {k: {"value": f.value, "n": f.n} for k, f in d.items()}

    return RewardModelReport.model_validate(
        {
            "project_id": project.id,
            "name": model.name,
            "filename": model.filename,
            "created_at": model.created_at,
            "scored_responses": model.scored,
            "consensus_method": method,
            "decisions": len(humans.sign),
            "scored": e.scored,
            "unscored": e.unscored,
            "individual": figures(e.individual),
            "consensus": figures(e.consensus),
            "consensus_unscored": e.consensus_unscored,
            "ceiling": figures(e.ceiling),
            "model_on_ceiling_pairs": figures(e.model_on_ceiling_pairs),
            "prompt_levels": humans.prompt_level_counts,
            "by_level": {k: figures(v) for k, v in e.by_level.items()},
            "by_model_pair": {k: figures(v) for k, v in e.by_model_pair.items()},
            "calibration": [vars(b) for b in e.calibration],
            "ece": e.ece,
        }
    )


def report(*, session: Session, project: Project, name: str, method: str = "borda") -> RewardModelReport:
    model = get(session=session, project=project, name=name)
    return _report(session, project, model, human_decisions(session=session, project=project, method=method), method)


def cached_report(database: Database, project_id: int, name: str, method: str = "borda") -> RewardModelReport:
    """`report` through the report cache (app/reports/cache.py), one entry per name and consensus method."""
    return cache.get_or_compute(
        database,
        kind="reward-model",
        project_id=project_id,
        params={"name": name, "consensus": method},
        model=RewardModelReport,
        compute=lambda session, project: report(session=session, project=project, name=name, method=method),
    )


def cached_compare(database: Database, project_id: int, method: str = "borda") -> RewardModelList:
    """`compare` through the report cache, one entry per consensus method."""
    return cache.get_or_compute(
        database,
        kind="reward-models",
        project_id=project_id,
        params={"consensus": method},
        model=RewardModelList,
        compute=lambda session, project: compare(session=session, project=project, method=method),
    )


def reward_models(*, session: Session, project: Project) -> list[RewardModel]:
    return list(session.scalars(select(RewardModel).where(RewardModel.project_id == project.id).order_by(RewardModel.name)))


def compare(*, session: Session, project: Project, method: str = "borda") -> RewardModelList:
    """Every reward model of the project, side by side (the human decisions are loaded once)."""
    models = reward_models(session=session, project=project)
    humans = human_decisions(session=session, project=project, method=method) if models else None
    return RewardModelList(
        project_id=project.id,
        project_name=project.name,
        reward_models=[_report(session, project, m, humans, method) for m in models],
    )
