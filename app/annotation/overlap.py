"""Overlap: how many annotators a prompt wants. The one owner of these rules.

- At import a prompt wants the project's `overlap` annotators (`import_target`).
- Adaptive overlap: once a prompt has the labels it asked for, agreement strictly below the project's
  `adaptive_threshold` asks for one more annotator, never beyond `max_overlap`; the prompt is `boosted`
  (served first) until it has that label (`review_after_label`, the rule itself in `boosted_target`).
- Gold prompts are for every annotator. That is the `is_gold` flag, which the queue reads next to the
  target (`WANTS_ANNOTATORS`); marking and unmarking never touch `target_overlap`, so a boost survives.
- A prompt is complete when it has its target's labels; a gold prompt never is (`COMPLETE`).
- The project's overlap edited (`retarget`): prompts that follow it get the new target. Raising it reopens
  complete prompts (more work in the queue); lowering it stops new leases on prompts that now have enough
  (leases already out may still be labelled). Gold prompts keep their target, and so do prompts adaptive
  overlap raised above the old overlap, unless the new overlap is higher still (a boost never leaves a
  prompt below the project's overlap).
- The project counts' other states: a task is in progress while its lease runs (`held_now`); a prompt is
  `in_progress` while it is not complete and someone holds it, `open` otherwise (`prompt_status`).
"""

from datetime import datetime
from typing import Literal

from sqlalchemy import ColumnElement, exists, update
from sqlalchemy.orm import Session

from app.models import Assignment, AssignmentStatus, Project, Prompt
from app.rankings import Tiers

DEFAULT_OVERLAP = 3  # distinct annotators per prompt unless the project says otherwise

# The queue's condition for "still wants annotators" by target alone: the predicate of the partial index
# ix_prompts_open (app/models/prompt.py), so the least-served queue walks that index.
UNDER_TARGET = Prompt.active_count < Prompt.target_overlap
# Any prompt an annotator may still be given (gold ones beyond their target too).
WANTS_ANNOTATORS = UNDER_TARGET | Prompt.is_gold
# The project counts' "complete".
COMPLETE = (Prompt.completed_count >= Prompt.target_overlap) & ~Prompt.is_gold


PromptStatus = Literal["open", "in_progress", "complete"]
PROMPT_STATUSES: tuple[PromptStatus, ...] = ("open", "in_progress", "complete")


def held_now(now: datetime) -> ColumnElement[bool]:
    """Assignments on someone's screen right now: the project counts' `in_progress`."""
    return (Assignment.status == AssignmentStatus.leased) & (Assignment.lease_expires_at > now)


def prompt_held(now: datetime) -> ColumnElement[bool]:
    """Prompts someone holds right now (the correlated EXISTS of a prompt query)."""
    return exists().where(Assignment.prompt_id == Prompt.id, held_now(now))


def prompt_status(status: PromptStatus, now: datetime) -> ColumnElement[bool]:
    """Prompts in one of the states the project counts name."""
    if status == "complete":
        return COMPLETE
    return ~COMPLETE & (prompt_held(now) if status == "in_progress" else ~prompt_held(now))


def import_target(project: Project) -> int:
    """target_overlap of a newly imported prompt."""
    return project.overlap


def retarget(*, session: Session, project: Project, old_overlap: int) -> None:
    """After `project.overlap` changed from `old_overlap`: the new targets, in one UPDATE."""
    new_overlap = project.overlap
    follows = Prompt.target_overlap == old_overlap  # never boosted (or not above the old overlap)
    if new_overlap > old_overlap:
        follows = Prompt.target_overlap < new_overlap  # boosted ones below the new overlap come up too
    session.execute(
        update(Prompt)
        .where(Prompt.project_id == project.id, ~Prompt.is_gold, follows)
        .values(target_overlap=new_overlap)
        .execution_options(synchronize_session=False)
    )


def boosted_target(*, target: int, agreement: float | None, threshold: float, max_overlap: int) -> int | None:
    """The raised target for a prompt that got all its labels, or None if it asks for no more: agreement
    strictly below the threshold (at the threshold is agreement enough), and room under max_overlap."""
    if agreement is None or agreement >= threshold or target >= max_overlap:
        return None
    return target + 1


def review_after_label(*, project: Project, prompt: Prompt, agreement: float | None) -> None:
    """After a label on `prompt` (just counted; `agreement` its agreement now): apply adaptive overlap to it."""
    if project.adaptive_threshold is None or not project.max_overlap or prompt.is_gold:
        return
    if prompt.completed_count < prompt.target_overlap:
        return  # labels still to come: agreement is judged on the full set
    target = boosted_target(
        target=prompt.target_overlap,
        agreement=agreement,
        threshold=project.adaptive_threshold,
        max_overlap=project.max_overlap,
    )
    prompt.boosted = target is not None
    if target is not None:
        prompt.target_overlap = target


def mark_gold(prompt: Prompt, ranking: Tiers | None) -> None:
    """Gold with its known answer, or not gold (ranking=None). The target stays: see the module docstring."""
    prompt.is_gold, prompt.gold_ranking = ranking is not None, ranking
