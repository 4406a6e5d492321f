"""Reference labels from an import: which prompt a judgement belongs to, and writing it (one per prompt and source).

A judgement (a preference pair or a listwise ranking, `ParsedPrompt.reference`) goes to
1. the project's prompt with the record's id (its "id", a listwise export's "prompt_id", or the id the import
   derives for a pair or a prompt without one), else
2. the project's prompt with the same content: identical prompt messages (role and text; whether the file gave a
   plain string or a chat does not matter) and the same response texts, in any order, else
3. a new prompt, written and served to annotators as any imported prompt is.
On an existing prompt the ranking's responses are found by their text: the record's response texts must be the
prompt's (the same texts, as many times each), else the import fails naming the line. A source already on the
prompt is replaced: importing a judge's corrected file again updates its labels (the same file again changes
nothing). The source is the upload's `source`, by default "<format>: <file name>".
"""

import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterable

import orjson
from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from app.models import Prompt, ReferenceLabel, Response, shown_in
from app.models.base import utcnow
from app.prompts.upload import ParsedPrompt, ParseError
from app.text import unstorable

MAX_SOURCE_LENGTH = 200


def source_problem(source: str) -> str | None:
    """Why an upload's source name is refused, or None."""
    if not source.strip():
        return "must not be empty"
    if len(source) > MAX_SOURCE_LENGTH:
        return f"must be at most {MAX_SOURCE_LENGTH} characters, got {len(source)}"
    return unstorable(source)


def _content_key(messages: list[dict[str, str]], texts: Iterable[str]) -> str:
    plain = [{"role": m["role"], "content": m["content"]} for m in messages]
    return hashlib.sha256(orjson.dumps([plain, sorted(texts)])).hexdigest()


class ContentIndex:
    """The project's shown prompts by content (rule 2 above), read once, when a judgement first needs it."""

    def __init__(self, project_id: int) -> None:
        self._project_id = project_id
        self._keys: dict[str, int] | None = None

    def find(self, session: Session, parsed: ParsedPrompt) -> int | None:
        if self._keys is None:
            texts: dict[int, list[str]] = defaultdict(list)
            for prompt_id, text in session.execute(
                select(Response.prompt_id, Response.text).join(Prompt).where(shown_in(self._project_id))
            ):
                texts[prompt_id].append(text)
            self._keys = {}
            for prompt_id, messages in session.execute(
                select(Prompt.id, Prompt.messages).where(shown_in(self._project_id)).order_by(Prompt.id)
            ):
                self._keys.setdefault(_content_key(messages, texts[prompt_id]), prompt_id)  # the oldest wins
        return self._keys.get(_content_key(parsed.messages, [r.text for r in parsed.responses]))


def write_references(
    session: Session,
    judgements: list[tuple[int, ParsedPrompt, bool]],
    *,
    source: str | None,
    error: Callable[[ParseError], None],
) -> int:
    """Writes the reference labels of (prompt id, parsed record, prompt is new) and returns how many. A record whose
    responses are not the existing prompt's goes to `error` (the import then fails) and writes nothing."""
    if not judgements:
        return 0
    responses: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for prompt_id, response_id, text in session.execute(
        select(Response.prompt_id, Response.id, Response.text)
        .where(Response.prompt_id.in_({prompt_id for prompt_id, _, _ in judgements}))
        .order_by(Response.prompt_id, Response.position)
    ):
        responses[prompt_id].append((response_id, text))
    rows: dict[tuple[int, str], list[list[int]]] = {}
    for prompt_id, parsed, new in judgements:
        stored = responses[prompt_id]
        # New: written from this record, positions in its order. Existing: its responses found by their texts.
        ids = [response_id for response_id, _ in stored] if new else _match(stored, [r.text for r in parsed.responses])
        if ids is None:
            error(
                ParseError(
                    parsed.location,
                    "responses",
                    "are not the responses of the project's prompt with this id (the same texts are needed to "
                    "attach a judgement to a prompt already in the project)",
                )
            )
            continue
        name = (source or parsed.reference_source or "reference")[:MAX_SOURCE_LENGTH]
        rows[prompt_id, name] = [[ids[i] for i in tier] for tier in parsed.reference or ()]
    if not rows:
        return 0
    for name in {name for _, name in rows}:  # replaced: one label a prompt and source
        ids = [prompt_id for prompt_id, n in rows if n == name]
        for start in range(0, len(ids), 1000):
            session.execute(
                delete(ReferenceLabel).where(
                    ReferenceLabel.source == name, ReferenceLabel.prompt_id.in_(ids[start : start + 1000])
                )
            )
    now = utcnow()
    session.execute(
        insert(ReferenceLabel),
        [{"prompt_id": p, "source": n, "ranking": tiers, "created_at": now} for (p, n), tiers in rows.items()],
    )
    return len(rows)


def _match(stored: list[tuple[int, str]], texts: list[str]) -> list[int] | None:
    """The stored response id for each of `texts` (the k-th copy of a text to the k-th stored copy), or None when the
    texts are not exactly the stored ones."""
    if sorted(text for _, text in stored) != sorted(texts):
        return None
    free: dict[str, list[int]] = defaultdict(list)
    for response_id, text in stored:
        free[text].append(response_id)
    return [free[text].pop(0) for text in texts]
