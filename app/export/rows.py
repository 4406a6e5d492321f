"""From the database to export rows, one prompt at a time, in constant memory.

Prompts are read in keyset pages (prompt ids after the last one seen), and each page's labels and
responses with two more queries, so consensus sees all labels of a prompt together, nothing is held
beyond one page, and no ORM object is built (core selects return tuples: the hot path). On SQLite each page's
query comes back as one JSON array (`_page_rows`).
"""

import hashlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple, NotRequired, TypedDict

import orjson
from sqlalchemy import Connection, Select, Text, cast, func, select
from sqlalchemy.orm import Session

from app import hh
from app.agreement.consensus import Consensus, Method, consensus
from app.agreement.metrics import RankingLabel
from app.export.availability import reference_source
from app.export.options import ConsensusOption, ExportOptions
from app.export.pairs import select_pairs
from app.models import Annotation, Assignment, AssignmentStatus, Project, Prompt, ReferenceLabel, Response, User, shown_in
from app.rankings import Tiers

PAGE = 1000  # prompts per keyset page
# option -> app.agreement.consensus method; "none" (rows per annotator) still needs one for min_agreement,
# and any method gives the same agreement
CONSENSUS_METHODS: dict[ConsensusOption, Method] = {
    "none": "borda",
    "majority": "pair_majority",
    "borda": "borda",
    "ranked_pairs": "ranked_pairs",
    "bradley_terry": "bradley_terry",
    "plackett_luce": "plackett_luce",
}
Message = dict[str, str]  # {"role": ..., "content": ...}, as Prompt.messages stores them
Content = str | list[Message]  # a prompt or completion: text, or messages (trl-chat)


# The rows' types, one per format family, keys in column order; app/export/formats.py decides which columns a
# file has. Optional keys follow the options (margin, split, per-annotator or consensus columns); a PairRow is
# built key by key, so all of its keys are optional.
class PairRow(TypedDict, total=False):
    prompt: Content  # not in hh: the transcript is in chosen and rejected
    chosen: Content
    rejected: Content
    margin: float
    tie: bool
    prompt_id: str
    chosen_response_id: int
    rejected_response_id: int
    chosen_model: str | None
    rejected_model: str | None
    annotator_id: int | None
    annotation_id: int | None
    reference_source: str | None
    consensus: str
    n_annotators: int
    votes_chosen: int
    votes_rejected: int
    votes_tie: int
    agreement: float | None
    split: str


class ListwiseRow(TypedDict):
    prompt: str
    responses: list[str]
    response_ids: list[int]
    models: list[str | None]
    ranking: list[list[int]]  # positions in responses, best tier first
    ranks: list[int]
    prompt_id: str
    annotator_id: NotRequired[int | None]
    annotation_id: NotRequired[int | None]
    reference_source: NotRequired[str | None]
    consensus: NotRequired[str]
    n_annotators: NotRequired[int]
    agreement: NotRequired[float | None]
    split: NotRequired[str]


class RawRating(TypedDict):
    criterion: str
    response_id: int
    value: float


class RawRow(TypedDict):
    annotation_id: int | None
    prompt_id: str
    prompt: str
    messages: list[Message]
    responses: list[str]
    response_ids: list[int]
    models: list[str | None]
    kind: str
    annotator_id: int | None
    annotator_email: str | None
    ranking: Tiers | None
    strength: int | None
    strength_label: str | None
    none_acceptable: bool
    flag: str | None
    flag_reason: str | None
    rationale: str | None
    ratings: list[RawRating]
    shown_order: list[int]
    order_changed: bool
    time_spent_ms: int | None
    leased_at: str | None
    created_at: str | None
    revision: int  # 0: never revised; the row is the latest version
    revised_at: str | None
    is_gold: bool
    split: NotRequired[str]


class SkipRow(TypedDict):
    prompt_id: str  # the prompt's id in the uploaded file, as in the other formats
    prompt_db_id: int  # Preflab's id (URLs, the API)
    annotator_id: int
    annotator_email: str | None
    reason: str | None  # None: skipped without a reason (before reasons were required)
    skipped_at: str | None
    is_gold: bool
    split: NotRequired[str]


Row = PairRow | ListwiseRow | RawRow | SkipRow
Source = tuple[Tiers, "Label | Consensus"]  # a ranking that gives rows, and whose: one annotator's or the consensus


class RawExtra(NamedTuple):
    """The raw format's further annotation columns (RAW_EXTRA, in this order)."""

    kind: str
    flag_reason: str | None
    rationale: str | None
    ratings: dict[str, dict[str, float]] | None  # criterion -> response id -> value
    shown_order: list[int]
    order_changed: bool
    time_spent_ms: int | None
    leased_at: datetime | None
    created_at: datetime | None
    revision: int
    revised_at: datetime | None


@dataclass(slots=True)
class Label:
    id: int | None  # None (and annotator_id None): the reference label of an imported preference
    annotator_id: int | None
    tiers: Tiers | None
    strength: int | None
    flag: str | None
    none_acceptable: bool
    extra: RawExtra | None = None  # raw format only


@dataclass(slots=True)
class Group:
    """One prompt with its responses (upload order) and the labels the filters kept."""

    id: int
    external_id: str
    messages: list[Message]
    is_chat: bool
    is_gold: bool
    responses: list[tuple[int, str, str | None]] = field(default_factory=list)  # (id, text, model)
    labels: list[Label] = field(default_factory=list)
    reference_source: str | None = None  # labels=reference: where the reference came from


@dataclass(slots=True)
class SkipGroup:
    """One prompt's skips: (annotator id, reason, when), oldest first."""

    id: int
    external_id: str
    is_gold: bool
    skips: list[tuple[int, str | None, datetime | None]] = field(default_factory=list)


RAW_EXTRA = (
    Annotation.kind,
    Annotation.flag_reason,
    Annotation.rationale,
    Annotation.ratings,
    Annotation.shown_order,
    Annotation.order_changed,
    Annotation.time_spent_ms,
    Assignment.leased_at,
    Annotation.created_at,
    Annotation.revision,
    Annotation.revised_at,
)


def _json(column):
    """A JSON column read as its text and decoded with orjson: several times faster than the driver's json
    module (SQLite stores text; PostgreSQL's jsonb -> text cast is cheap on the server)."""
    return cast(column, Text)


def _page_rows(conn: Connection, query: Select) -> Iterable[Sequence[Any]]:
    """The rows of one page's query. On SQLite, aggregated into one JSON array by SQLite and decoded by orjson: the
    sqlite3 driver gives the GIL back around every row it steps, so beside any busy thread of the process (an import
    parsing, a report) each row waited its turn, and an export of 1.1 s took 11 s (BENCHMARKS.md, "Mixed load"); one
    step per query does not wait. Values pass through their column types' result processors, as the driver's rows do
    (booleans, datetimes, JSON)."""
    if conn.dialect.name != "sqlite":
        return conn.execute(query)
    page = query.subquery()  # its ORDER BY is kept: SQLite aggregates an ordered subquery in its order
    packed = conn.execute(select(func.json_group_array(func.json_array(*page.c)))).scalar_one()
    rows = orjson.loads(packed)
    processors = [
        (i, column.type.dialect_impl(conn.dialect).result_processor(conn.dialect, None)) for i, column in enumerate(page.c)
    ]
    if processors := [(i, process) for i, process in processors if process is not None]:
        for row in rows:
            for i, process in processors:
                row[i] = process(row[i])
    return rows


def _loads(value: str | None) -> Any:  # JSON: any shape
    return None if value is None else orjson.loads(value)


def labelled_prompt_ids(project: Project, *, source: str | None = None):
    """The select of the prompts an export reads: those with a label, or those with a reference label of `source`."""
    if source is not None:
        return (
            select(ReferenceLabel.prompt_id)
            .join(Prompt, Prompt.id == ReferenceLabel.prompt_id)
            .where(shown_in(project.id), ReferenceLabel.source == source)
        )
    return select(Annotation.prompt_id).where(Annotation.project_id == project.id).group_by(Annotation.prompt_id)


def skipped_prompt_ids(project: Project):
    """The select of the prompts somebody skipped: what the skips format reads."""
    return (
        select(Assignment.prompt_id)
        .where(Assignment.project_id == project.id, Assignment.status == AssignmentStatus.skipped)
        .group_by(Assignment.prompt_id)
    )


def iter_skip_groups(*, session: Session, project: Project, page: int = PAGE) -> Iterator[SkipGroup]:
    """Every skipped prompt of the project with its skips, in prompt id order, a keyset page of prompts at a time."""
    conn = session.connection()
    query_ids = skipped_prompt_ids(project)
    last = 0
    while True:
        ids = (
            conn.execute(query_ids.where(Assignment.prompt_id > last).order_by(Assignment.prompt_id).limit(page)).scalars().all()
        )
        if not ids:
            return
        groups = {
            pid: SkipGroup(pid, ext, is_gold)
            for pid, ext, is_gold in conn.execute(select(Prompt.id, Prompt.external_id, Prompt.is_gold).where(Prompt.id.in_(ids)))
        }
        for pid, annotator_id, reason, when in conn.execute(
            select(Assignment.prompt_id, Assignment.annotator_id, Assignment.skip_reason, Assignment.skipped_at)
            .where(Assignment.prompt_id.in_(ids), Assignment.status == AssignmentStatus.skipped)
            .order_by(Assignment.prompt_id, Assignment.skipped_at, Assignment.id)
        ):
            groups[pid].skips.append((annotator_id, reason, when))
        yield from (groups[pid] for pid in ids)
        last = ids[-1]


def skip_rows(group: SkipGroup, emails: dict[int, str]) -> list[SkipRow]:
    """The skips format's rows of one prompt (also the dataset folder's skips.jsonl)."""
    return [
        SkipRow(
            prompt_id=group.external_id,
            prompt_db_id=group.id,
            annotator_id=annotator_id,
            annotator_email=emails.get(annotator_id),
            reason=reason,
            skipped_at=_iso(when),
            is_gold=group.is_gold,
        )
        for annotator_id, reason, when in group.skips
    ]


def iter_groups(
    *, session: Session, project: Project, raw: bool = False, source: str | None = None, page: int = PAGE
) -> Iterator[Group]:
    """Every prompt of the project that has at least one label, in prompt id order. source: every prompt with a
    reference label from that source instead, which is its one label (no annotator, no annotation id)."""
    conn = session.connection()  # core: rows come back as plain tuples, no ORM bookkeeping
    query_ids = labelled_prompt_ids(project, source=source)
    key = query_ids.selected_columns[0]
    last = 0
    while True:
        ids = [row[0] for row in _page_rows(conn, query_ids.where(key > last).order_by(key).limit(page))]
        if not ids:
            return
        yield from read_page(conn, project, ids, raw=raw, source=source)
        last = ids[-1]


def read_page(conn: Connection, project: Project, ids: list[int], *, raw: bool, source: str | None) -> list[Group]:
    """The groups of one page of prompt ids (ascending): prompts, responses, and labels or reference labels. With no
    ids it runs every query on an empty page: the start's warm-up (app.main) compiles them so."""
    groups = {}
    for pid, ext, messages, is_chat, is_gold in _page_rows(
        conn,
        select(Prompt.id, Prompt.external_id, _json(Prompt.messages), Prompt.is_chat, Prompt.is_gold).where(Prompt.id.in_(ids)),
    ):
        groups[pid] = Group(pid, ext, orjson.loads(messages), is_chat, is_gold)
    if source is not None:
        for pid, ranking in conn.execute(
            select(ReferenceLabel.prompt_id, _json(ReferenceLabel.ranking)).where(
                ReferenceLabel.prompt_id.in_(ids), ReferenceLabel.source == source
            )
        ):
            groups[pid].labels.append(Label(None, None, orjson.loads(ranking), None, None, False))
            groups[pid].reference_source = source
    for pid, rid, text, model in _page_rows(
        conn,
        select(Response.prompt_id, Response.id, Response.text, Response.model)
        .where(Response.prompt_id.in_(ids))
        .order_by(Response.prompt_id, Response.position),
    ):
        groups[pid].responses.append((rid, text, model))
    if source is None:
        query = select(
            Annotation.prompt_id,
            Annotation.id,
            Annotation.annotator_id,
            _json(Annotation.ranking),
            Annotation.strength,
            Annotation.flag,
            Annotation.none_acceptable,
            *(RAW_EXTRA if raw else ()),
        )
        if raw:
            query = query.join(Assignment, Assignment.id == Annotation.assignment_id)
        lo, hi = (ids[0], ids[-1]) if ids else (0, -1)
        query = query.where(Annotation.project_id == project.id, Annotation.prompt_id.between(lo, hi))
        for row in _page_rows(conn, query.order_by(Annotation.prompt_id, Annotation.id)):
            extra = RawExtra(*row[7:]) if raw else None
            groups[row[0]].labels.append(Label(row[1], row[2], _loads(row[3]), row[4], row[5], row[6], extra))
    return [groups[pid] for pid in ids]


def split_of(prompt_id: str, *, seed: int, test_fraction: float) -> str:
    """Deterministic split by prompt: a hash of (seed, prompt id), independent of order and database."""
    if test_fraction <= 0:
        return "train"
    h = int.from_bytes(hashlib.blake2b(f"{seed}:{prompt_id}".encode(), digest_size=8).digest(), "big")
    return "test" if h / 2**64 < test_fraction else "train"


def annotator_split(annotator_id: int | None, *, seed: int, test_fraction: float) -> str:
    """Deterministic split by annotator (split_by=annotator): the same hash as split_of, of "annotator:{id}"."""
    return split_of(f"annotator:{annotator_id}", seed=seed, test_fraction=test_fraction)


def prompt_text(messages: list[Message], is_chat: bool, template: str) -> str:
    """raw: a plain prompt as given, a chat as a `Role: content` transcript (v1). hh: the HH-RLHF
    transcript ending in "\\n\\nAssistant:", so TRL's prompt + chosen reads as one conversation."""
    if template == "hh":
        return hh.prompt(messages)
    if not is_chat:
        return messages[0]["content"]
    return "\n\n".join(f"{m['role'].capitalize()}: {m['content']}" for m in messages)


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()


class RowBuilder:
    """Turns kept groups into rows of one format; holds per-export state (dedupe hashes, counters)."""

    def __init__(self, *, options: ExportOptions, project: Project, emails: dict[int, str], split_column: bool) -> None:
        self.o = options
        self.project = project
        self.emails = emails
        self.split_column = split_column
        self.scale = project.strength_scale or []
        self.method = CONSENSUS_METHODS[options.consensus]
        self.template = options.prompt_template
        self.reference = options.labels == "reference"
        self.seen: set[int] = set()  # dedupe: 64-bit hashes of the rows written so far
        self.dropped = {"below_min_annotators": 0, "below_min_agreement": 0, "gold": 0, "duplicates": 0}
        self.prompts = {s: 0 for s in options.splits}  # prompts that gave at least one row, per split
        self.split_rows = {s: 0 for s in options.splits}
        self.annotators: set[int] = set()  # annotators whose labels gave rows

    # -- filters -------------------------------------------------------------------------------------------
    def keep(self, group: Group) -> tuple[list[Label], Consensus | None] | None:
        """The labels of a group that pass the filters and its consensus (when one is needed), or None
        when the prompt is dropped."""
        o = self.o
        if o.exclude_gold and group.is_gold:
            self.dropped["gold"] += 1
            return None
        labels = [
            lab
            for lab in group.labels
            if not (o.exclude_flagged and lab.flag) and not (o.exclude_none_acceptable and lab.none_acceptable)
        ]
        ranked = [lab for lab in labels if lab.tiers]
        counted = labels if o.format == "raw" else ranked  # raw rows are annotations, with or without a ranking
        if not counted or len({lab.annotator_id for lab in counted}) < o.min_annotators:
            self.dropped["below_min_annotators"] += 1
            return None
        result = None
        if ranked and (o.consensus != "none" or o.min_agreement is not None):
            # Every label here has an annotator: the reference labels (none) refuse consensus and min_agreement.
            rankings = [
                RankingLabel(group.id, lab.annotator_id, lab.tiers)
                for lab in ranked
                if lab.tiers and lab.annotator_id is not None
            ]
            result = consensus(rankings, self.method)
            if o.min_agreement is not None and (result.agreement is None or result.agreement < o.min_agreement):
                self.dropped["below_min_agreement"] += 1
                return None
        return labels, result

    # -- rows ------------------------------------------------------------------------------------------------
    def rows(self, group: Group) -> tuple[str, list[Row]]:
        """The split of one prompt and its rows (a list: a prompt's rows are few, and lists beat generator chains)."""
        kept = self.keep(group)
        split = split_of(group.external_id, seed=self.o.seed, test_fraction=self.o.test_fraction)
        if kept is None:
            return split, []
        labels, result = kept
        return split, self._counted(split, self._format(group, labels, result), self._label_annotators(labels))

    def rows_by_split(self, group: Group) -> list[tuple[str, list[Row]]]:
        """The rows of one prompt by split: one split (split_by=prompt), or each annotator's rows in the annotator's
        split (split_by=annotator; the prompt's filters still look at all of its labels)."""
        if self.o.split_by == "prompt":
            split, rows = self.rows(group)
            return [(split, rows)] if rows else []
        kept = self.keep(group)
        if kept is None:
            return []
        labels, result = kept
        by_split: dict[str, list[Label]] = {}
        for lab in labels:
            by_split.setdefault(
                annotator_split(lab.annotator_id, seed=self.o.seed, test_fraction=self.o.test_fraction), []
            ).append(lab)
        out = []
        for split, mine in by_split.items():
            if rows := self._counted(split, self._format(group, mine, result), self._label_annotators(mine)):
                out.append((split, rows))
        return out

    def _format(self, group: Group, labels: list[Label], result: Consensus | None) -> list[Row]:
        if self.o.format == "raw":
            return list(self._raw(group, labels))
        if self.o.format == "listwise":
            return list(self._listwise(group, self._sources(labels, result)))
        return list(self._pairs(group, labels, self._sources(labels, result)))

    def _label_annotators(self, labels: list[Label]) -> set[int]:
        """The annotators whose labels give rows (any label in raw; a ranking otherwise)."""
        return {lab.annotator_id for lab in labels if (lab.tiers or self.o.format == "raw") and lab.annotator_id is not None}

    def skip_rows(self, group: SkipGroup) -> tuple[str, list[Row]]:
        """The skips format: the split of one prompt and a row per skip."""
        split = split_of(group.external_id, seed=self.o.seed, test_fraction=self.o.test_fraction)
        if self.o.exclude_gold and group.is_gold:
            self.dropped["gold"] += 1
            return split, []
        rows: list[Row] = list(skip_rows(group, self.emails))
        return split, self._counted(split, rows, {annotator_id for annotator_id, _, _ in group.skips})

    def _counted(self, split: str, rows: list[Row], annotators: set[int]) -> list[Row]:
        """Count `rows` (given by `annotators`' labels or skips) into `split` (and write the split column)."""
        if rows:
            self.prompts[split] += 1
            self.split_rows[split] += len(rows)
            self.annotators.update(annotators)
            if self.split_column:
                for row in rows:
                    row["split"] = split
        return rows

    def _sources(self, labels: list[Label], result: Consensus | None) -> list[Source]:
        """The rankings that give rows: every ranked label (consensus none), or the prompt's consensus."""
        if self.o.consensus == "none":
            return [(lab.tiers, lab) for lab in labels if lab.tiers]
        # keep() computes a consensus whenever one is asked for and a label ranks; no ranking, no rows
        return [(result.tiers, result)] if result is not None else []

    def _completion(self, text: str) -> str:
        # After "Assistant:" a completion starts with a space; the hh format is always that transcript.
        return hh.completion(text) if self.template == "hh" or self.o.format == "hh" else text

    def _margin(self, strengths: list[int | None], distance: int) -> float:
        """Llama 2 (§3.2.2): a scale of n levels, 0 = strongest, gives n-1-s (large) or (n-1-s)/(n-1)
        (small); with 4 levels exactly the paper's tables. No strength counts as the weakest (0)."""
        if distance == 0:
            return 0.0  # a tie: no direction to widen
        if self.o.margin == "rank_distance":
            return float(distance)
        top = len(self.scale) - 1
        values = [top - s if s is not None else 0 for s in strengths]
        mean = sum(values) / len(values) if values else 0.0
        return float(mean) if self.o.margin == "llama2_large" else (mean / top if top > 0 else 0.0)

    def _pairs(self, group: Group, labels: list[Label], sources: list[Source]) -> list[PairRow]:
        # The hot path (a million pairs): a dict literal per row, prompt text and completions built once a prompt.
        o, fmt = self.o, self.o.format
        prompt: Content
        texts: dict[int, Content]
        if fmt == "trl-chat":
            prompt = [{"role": m["role"], "content": m["content"]} for m in group.messages]
            texts = {rid: [{"role": "assistant", "content": text}] for rid, text, _ in group.responses}
        else:
            prompt = prompt_text(group.messages, group.is_chat, self.template if fmt == "trl" else "hh")
            before = prompt if fmt == "hh" else ""  # hh: implicit prompt, the whole transcript in chosen and rejected
            texts = {rid: before + self._completion(text) for rid, text, _ in group.responses}
        models = {rid: model for rid, _, model in group.responses}
        keep_ties, margin, ext = o.ties == "keep", o.margin != "none", group.external_id
        out: list[PairRow] = []
        for tiers, source in sources:
            for better, worse, distance in select_pairs(tiers, o.pairs, keep_ties):
                row: PairRow = (
                    {"chosen": texts[better], "rejected": texts[worse]}
                    if fmt == "hh"
                    else {"prompt": prompt, "chosen": texts[better], "rejected": texts[worse]}
                )
                if margin:
                    # consensus: the strengths of the annotators who preferred the consensus winner
                    strengths = (
                        [source.strength]
                        if isinstance(source, Label)
                        else [x.strength for x in labels if x.tiers and _prefers(x.tiers, better, worse)]
                    )
                    row["margin"] = self._margin(strengths, distance)
                row["tie"] = distance == 0
                row["prompt_id"] = ext
                row["chosen_response_id"] = better
                row["rejected_response_id"] = worse
                row["chosen_model"] = models[better]
                row["rejected_model"] = models[worse]
                if isinstance(source, Label):
                    row["annotator_id"] = source.annotator_id
                    row["annotation_id"] = source.id
                    if self.reference:
                        row["reference_source"] = group.reference_source
                else:
                    lo_votes, hi_votes, tie_votes = source.pair_votes[(min(better, worse), max(better, worse))]
                    row["consensus"], row["n_annotators"] = o.consensus, source.n_annotators
                    row["votes_chosen"], row["votes_rejected"] = (lo_votes, hi_votes) if better < worse else (hi_votes, lo_votes)
                    row["votes_tie"], row["agreement"] = tie_votes, source.agreement
                if o.dedupe and self._duplicate(row):
                    continue
                out.append(row)
        return out

    def _duplicate(self, row: PairRow) -> bool:
        key = orjson.dumps([row.get("prompt"), row["chosen"], row["rejected"], row["tie"]])
        h = int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big")
        if h in self.seen:
            self.dropped["duplicates"] += 1
            return True
        self.seen.add(h)
        return False

    def _listwise(self, group: Group, sources: list[Source]) -> Iterator[ListwiseRow]:
        ids = [rid for rid, _, _ in group.responses]
        index = {rid: i for i, rid in enumerate(ids)}
        prompt = prompt_text(group.messages, group.is_chat, self.template)
        responses = [self._completion(text) for _, text, _ in group.responses]
        models = [model for _, _, model in group.responses]
        for tiers, source in sources:
            ranks = [0] * len(ids)
            for number, tier in enumerate(tiers, 1):
                for rid in tier:
                    ranks[index[rid]] = number  # 1 = best; tied responses share a rank
            row: ListwiseRow = {
                "prompt": prompt,
                "responses": responses,
                "response_ids": ids,
                "models": models,
                "ranking": [sorted(index[rid] for rid in tier) for tier in tiers],
                "ranks": ranks,
                "prompt_id": group.external_id,
            }
            if isinstance(source, Label):
                row["annotator_id"], row["annotation_id"] = source.annotator_id, source.id
                if self.reference:
                    row["reference_source"] = group.reference_source
            else:
                row["consensus"], row["n_annotators"], row["agreement"] = self.o.consensus, source.n_annotators, source.agreement
            yield row

    def _raw(self, group: Group, labels: list[Label]) -> Iterator[RawRow]:
        prompt = prompt_text(group.messages, group.is_chat, self.template)
        messages = [{"role": m["role"], "content": m["content"]} for m in group.messages]
        for lab in labels:
            if lab.extra is None:  # iter_groups(raw=True) reads them for every label
                raise ValueError(f"prompt {group.external_id}: label {lab.id} was read without its raw columns")
            kind, flag_reason, rationale, ratings, shown, changed, ms, leased_at, created_at, revision, revised_at = lab.extra
            yield {
                "annotation_id": lab.id,
                "prompt_id": group.external_id,
                "prompt": prompt,
                "messages": messages,
                "responses": [text for _, text, _ in group.responses],
                "response_ids": [rid for rid, _, _ in group.responses],
                "models": [model for _, _, model in group.responses],
                "kind": kind,
                "annotator_id": lab.annotator_id,
                "annotator_email": self.emails.get(lab.annotator_id) if lab.annotator_id is not None else None,
                "ranking": lab.tiers,
                "strength": lab.strength,
                "strength_label": self.scale[lab.strength]
                if lab.strength is not None and lab.strength < len(self.scale)
                else None,
                "none_acceptable": bool(lab.none_acceptable),
                "flag": lab.flag,
                "flag_reason": flag_reason,
                "rationale": rationale,
                "ratings": [
                    {"criterion": c, "response_id": int(rid), "value": float(v)}
                    for c, values in sorted((ratings or {}).items())
                    for rid, v in sorted(values.items())
                ],
                "shown_order": shown,
                "order_changed": bool(changed),
                "time_spent_ms": ms,
                "leased_at": _iso(leased_at),
                "created_at": _iso(created_at),
                "revision": revision,
                "revised_at": _iso(revised_at),
                "is_gold": bool(group.is_gold),
            }


def _prefers(tiers: list[list[int]], better: int, worse: int) -> bool:
    for tier in tiers:
        if better in tier:
            return worse not in tier
        if worse in tier:
            return False
    return False


def export_source(session: Session, project: Project, options: ExportOptions) -> str | None:
    """The reference source a labels=reference export reads (app.export.availability.reference_source); None for
    the annotators' labels."""
    if options.labels != "reference":
        return None
    return reference_source(session=session, project=project, options=options)


def annotator_emails(session: Session, project: Project) -> dict[int, str]:
    """Emails of everyone who was given a task of the project (a handful of users), for the raw and skips formats."""
    ids = select(Assignment.annotator_id).where(Assignment.project_id == project.id).distinct()
    return dict(session.execute(select(User.id, User.email).where(User.id.in_(ids))).all())


def iter_rows(
    *, session: Session, project: Project, options: ExportOptions, split_column: bool, on_group: Callable[[], None] | None = None
) -> tuple[RowBuilder, Iterator[tuple[str, list[Row]]]]:
    """The builder (for its counters afterwards) and the stream of (split, rows of one prompt)."""
    emails = annotator_emails(session, project) if options.format in ("raw", "skips") else {}
    builder = RowBuilder(options=options, project=project, emails=emails, split_column=split_column)

    def built() -> Iterator[list[tuple[str, list[Row]]]]:
        """Per prompt, its rows by split."""
        if options.format == "skips":
            yield from ([builder.skip_rows(group)] for group in iter_skip_groups(session=session, project=project))
        else:
            groups = iter_groups(
                session=session, project=project, raw=options.format == "raw", source=export_source(session, project, options)
            )
            yield from (builder.rows_by_split(group) for group in groups)

    def stream() -> Iterator[tuple[str, list[Row]]]:
        for pieces in built():
            for split, rows in pieces:
                if rows:
                    yield split, rows
            if on_group:
                on_group()

    return builder, stream()
