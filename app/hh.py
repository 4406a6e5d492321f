"""The Human/Assistant transcript of Anthropic's HH-RLHF ("\\n\\nHuman: …\\n\\nAssistant: …"), written by the export
(its hh format and prompt template) and read by the import (hh records, and trl prompts in that template).

One owner for both directions, so an export in the hh format imports back to the same texts: one space follows
"Human:"/"Assistant:"/"System:" and belongs to the transcript, not to the turn's text; everything else is kept as
it is. "System:" is the turn Preflab writes for a system message (HH-RLHF itself has none).
"""

import re

HUMAN, ASSISTANT, SYSTEM = "\n\nHuman:", "\n\nAssistant:", "\n\nSystem:"
SPEAKERS = {"user": "Human", "assistant": "Assistant", "system": "System"}  # chat role -> transcript speaker
_ROLES = {speaker: role for role, speaker in SPEAKERS.items()}
_TURN = re.compile(r"\n\n(Human|Assistant|System):")


class TranscriptError(ValueError):
    """A transcript that can't be read; the message says why, for the user (the caller names the field)."""


# --- writing ------------------------------------------------------------------------------------------------


def prompt(messages: list[dict[str, str]]) -> str:
    """The messages as a transcript ending in "\\n\\nAssistant:", so prompt + completion reads as one conversation."""
    return "".join(f"\n\n{SPEAKERS.get(m['role'], m['role'].capitalize())}: {m['content']}" for m in messages) + ASSISTANT


def completion(text: str) -> str:
    """A response as it follows "Assistant:" in a transcript."""
    return " " + text


# --- reading ------------------------------------------------------------------------------------------------


def turn_text(text: str) -> str:
    """A turn's text without the one space that follows the speaker's colon; the rest as it is."""
    return text[1:] if text.startswith(" ") else text


def is_transcript(text: str) -> bool:
    """A whole conversation (prompt and response) in the transcript form."""
    return text.lstrip().startswith(("Human:", "System:")) and ASSISTANT in text


def is_prompt(text: str) -> bool:
    """A prompt as `prompt()` writes it: transcript turns ending in the empty Assistant turn."""
    return text.startswith((HUMAN, SYSTEM)) and text.endswith(ASSISTANT)


def split_response(text: str) -> tuple[str, str]:
    """(conversation before the last Assistant turn, that turn's text)."""
    i = text.rfind(ASSISTANT)
    if i < 0:
        raise TranscriptError('is not an HH transcript: it has no "\\n\\nAssistant:" turn')
    response = text[i + len(ASSISTANT) :]
    if HUMAN in response:
        raise TranscriptError('must end with an Assistant turn (the response), but a "\\n\\nHuman:" turn follows the last one')
    if not response.strip():
        raise TranscriptError("the last Assistant turn (the response) is empty")
    return text[:i], turn_text(response)


def turns(conversation: str) -> list[dict[str, str]]:
    """The chat messages of a conversation that precedes an Assistant turn (so it ends with a Human turn)."""
    parts = _TURN.split("\n\n" + conversation.lstrip())
    if parts[0].strip() or len(parts) == 1:
        raise TranscriptError('must start with a "\\n\\nHuman:" turn before the last Assistant turn')
    messages: list[dict[str, str]] = []
    for speaker, content in zip(parts[1::2], parts[2::2], strict=True):
        if not content.strip():
            raise TranscriptError(f"turn {len(messages) + 1} ({speaker}) of the prompt is empty")
        messages.append({"role": _ROLES[speaker], "content": turn_text(content)})
    if messages[-1]["role"] != "user":
        raise TranscriptError("the turn before the last Assistant turn must be a Human turn")
    return messages
