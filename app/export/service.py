"""Streaming export, from the database to the file, a chunk of annotations at a time."""
from collections.abc import Iterator

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from app.export.pairs import pairs_from_tiers
from app.models import Annotation, Project, Prompt

CHUNK = 1000
FORMATS = ("trl",)


def prompt_as_text(prompt: Prompt) -> str:
    """A plain prompt as given; a chat as a transcript, so the string format stays one string."""
    if not prompt.is_chat:
        return prompt.messages[0]["content"]
    return "\n\n".join(f"{m['role'].capitalize()}: {m['content']}" for m in prompt.messages)


def iter_trl_rows(*, session: Session, project: Project) -> Iterator[dict]:
    """TRL's explicit-prompt preference rows: {prompt, chosen, rejected} plus identifying columns."""
    annotations = session.scalars(
        select(Annotation)
        .where(Annotation.project_id == project.id, Annotation.ranking.is_not(None))
        .order_by(Annotation.prompt_id, Annotation.id)
        .execution_options(yield_per=CHUNK)
    )
    for chunk in annotations.partitions():
        prompts = {
            p.id: p
            for p in session.scalars(
                select(Prompt).where(Prompt.id.in_({a.prompt_id for a in chunk})).options(selectinload(Prompt.responses))
            )
        }
        for annotation in chunk:
            prompt = prompts[annotation.prompt_id]
            texts = {r.id: r.text for r in prompt.responses}
            prompt_text = prompt_as_text(prompt)
            for chosen, rejected in pairs_from_tiers(annotation.ranking):
                yield {
                    "prompt": prompt_text,
                    "chosen": texts[chosen],
                    "rejected": texts[rejected],
                    "prompt_id": prompt.external_id,
                    "annotator_id": annotation.annotator_id,
                    "annotation_id": annotation.id,
                    "chosen_response_id": chosen,
                    "rejected_response_id": rejected,
                }


def iter_jsonl(rows: Iterator[dict]) -> Iterator[bytes]:
    for row in rows:
        yield orjson.dumps(row) + b"\n"
