"""Preference records: one chosen and one rejected response, imported as a pairwise prompt whose original
preference is kept as a reference label (researchers and admins see it; annotators never do).

Formats (the upload's `format`; with "auto", a record with "chosen"/"rejected" is a preference record and its keys
and value types tell the format):
- trl: {"prompt": str, "chosen": str, "rejected": str} (TRL's standard format). A prompt in the HH template
  ("\\n\\nHuman: …\\n\\nAssistant:", as Preflab's trl export writes it) is read as its chat turns, and the one space
  that starts each response after it is the template's, not the response's. Without "prompt" (implicit prompt)
  the prompt is the common prefix of chosen and rejected, cut before its last whitespace, so the responses start
  with that whitespace as in TRL's `extract_prompt` ("The sky is" + " blue.").
- trl-chat: {"prompt": [messages], "chosen": [assistant message], "rejected": [assistant message]}. Without
  "prompt", chosen and rejected hold the whole conversation; the messages they share are the prompt.
- hh (Anthropic HH-RLHF): {"chosen": "\\n\\nHuman: …\\n\\nAssistant: …", "rejected": …}: everything before the
  last "\\n\\nAssistant:" must be the same in both and is the prompt, parsed into chat turns; after it comes the
  response, and no Human turn may follow it. The transcript is read by app/hh.py, which also writes it for the
  export, so an export in the hh format imports back to the same texts.
- ultrafeedback (HuggingFaceH4/ultrafeedback_binarized): {"prompt": str, "prompt_id", "chosen": [user, assistant],
  "rejected": [user, assistant], "score_chosen"?, "score_rejected"?}; the lists may also hold only the assistant
  message. Its "messages" column (a copy of chosen) is not kept.
Auto: a list prompt or message lists without a prompt are trl-chat; a string prompt with message lists is
ultrafeedback; strings without a prompt are hh when they start with "Human:" (or "System:", as Preflab's hh export
writes a system message) and have an "\\n\\nAssistant:" turn,
else trl.

Item ids: "id" is used as given. Otherwise "prompt_id" (the v1 trl export writes one; a ranking project's export
has several pairs per prompt_id, and each distinct (prompt, chosen, rejected) becomes its own pairwise item) gives
"{prompt_id}:{12 hex digits of the pair's content hash}"; without either, "sha256:{content hash}". The same pair
uploaded again is skipped. Other keys (prompt_id, scores, annotator ids, …) are kept as the prompt's metadata.

Response order: drawn at random (the system's CSPRNG) for each imported pair. Response ids and positions follow
this order and annotators see the ids, so nothing they can compute from what they see (a hash of the texts, the
item's id) may decide it: a content hash did, and the reference could be recovered from the ids.
Reference: [[chosen], [rejected]] as response positions (the import turns them into response ids), or the tie
[[a, b]] when score_chosen == score_rejected or "tie" is true (the export's tie rows, ties=keep).
"""

import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass

from app import hh
from app.prompts.upload.fields import (
    MAX_ID_LENGTH,
    MISSING,
    ExternalIds,
    Problems,
    check_chat,
    check_text,
    json_problems,
    kind,
)
from app.prompts.upload.records import ParsedPrompt, ParsedResponse, ParseError, content_digest
from app.prompts.upload.streams import StopParsing

PREFERENCE_FORMATS = ("trl", "trl-chat", "hh", "ultrafeedback")
_PAIR_KEYS = ("prompt", "chosen", "rejected", "id", "tie")  # everything else is kept as metadata
_PAIR_HASH = 12  # hex digits of the content hash after "{prompt_id}:"


@dataclass(frozen=True, slots=True)
class _Pair:
    messages: list[dict[str, str]]
    is_chat: bool
    chosen: str
    rejected: str


class PreferenceParser:
    """Turns preference records into `ParsedPrompt`s with a reference; used by validation.RecordValidator."""

    def __init__(self, ids: ExternalIds, record_format: str, filename: str, *, pairwise: bool) -> None:
        self._ids = ids  # the file's explicit ids, shared with its prompt records, to catch duplicates
        self._format = record_format
        self._filename = os.path.basename(filename)
        self._pairwise = pairwise  # the project compares two responses

    @staticmethod
    def is_preference(obj: object) -> bool:
        return isinstance(obj, dict) and ("chosen" in obj or "rejected" in obj)

    def record(self, obj: object, location: str) -> Iterator[ParsedPrompt | ParseError]:
        problems = Problems(location)
        if not isinstance(obj, dict):
            problems.add(None, f'must be a JSON object with "chosen" and "rejected", got {kind(obj)}')
            return iter(problems)
        if not self._pairwise:  # once for the file, not once a line
            raise StopParsing(
                ParseError(
                    location,
                    None,
                    "preference records (chosen/rejected) can only be imported "
                    "into a pairwise project; this is a ranking project",
                )
            )
        fmt = self._format if self._format in PREFERENCE_FORMATS else detect_preference_format(obj)
        explicit_id = self._ids.check(obj["id"], problems) if obj.get("id") is not None else None
        if "responses" in obj:
            problems.add("responses", 'a preference record has "chosen" and "rejected" instead of "responses"')
        if "chosen" in obj and obj.get("chosen") == obj.get("rejected"):
            problems.add("rejected", "is the same as chosen; a preference needs two different responses")
            pair = None
        else:
            pair = _PAIR_PARSERS[fmt](obj, problems)
        if pair is not None and pair.chosen == pair.rejected:
            problems.add("rejected", "is the same response as chosen; a preference needs two different responses")
        tie = _tie(obj, problems)
        metadata = {k: v for k, v in obj.items() if k not in _PAIR_KEYS and not (fmt == "ultrafeedback" and k == "messages")}
        for path, problem in json_problems(metadata, None):
            problems.add(path, problem)
        external_id = explicit_id or (self._derived_id(obj, pair, tie, problems) if pair else None)
        if problems or pair is None or external_id is None:
            return iter(problems)
        chosen_at = secrets.randbelow(2)  # 0: chosen stored first (see "Response order" above)
        texts = [pair.chosen, pair.rejected] if chosen_at == 0 else [pair.rejected, pair.chosen]
        return iter(
            [
                ParsedPrompt(
                    location,
                    external_id,
                    pair.messages,
                    pair.is_chat,
                    [ParsedResponse(t, None, None) for t in texts],
                    metadata or None,
                    reference=[[0, 1]] if tie else [[chosen_at], [1 - chosen_at]],
                    reference_source=f"{fmt}: {self._filename}"[:200],
                )
            ]
        )

    @staticmethod
    def _derived_id(obj: dict, pair: _Pair, tie: bool, problems: Problems) -> str | None:
        # A tie has no direction: both orders are the same item, and an item apart from a preference for either.
        texts = [*sorted([pair.chosen, pair.rejected]), "tie"] if tie else [pair.chosen, pair.rejected]
        digest = content_digest(pair.messages, texts)
        prompt_id = obj.get("prompt_id")
        if prompt_id is None:
            return "sha256:" + digest[:32]  # what the import calls a prompt with these responses
        if isinstance(prompt_id, int) and not isinstance(prompt_id, bool):
            prompt_id = str(prompt_id)
        if (prompt_id := check_text(prompt_id, "prompt_id", problems)) is None:
            return None
        if len(prompt_id) > MAX_ID_LENGTH - _PAIR_HASH - 1:
            problems.add("prompt_id", f"must be at most {MAX_ID_LENGTH - _PAIR_HASH - 1} characters, got {len(prompt_id)}")
            return None
        return f"{prompt_id}:{digest[:_PAIR_HASH]}"


def detect_preference_format(obj: dict) -> str:
    prompt = _get(obj, "prompt")
    sample = obj.get("chosen", obj.get("rejected"))
    if isinstance(prompt, list):
        return "trl-chat"
    if isinstance(prompt, str):
        return "ultrafeedback" if isinstance(sample, list) else "trl"
    if isinstance(sample, list):
        return "trl-chat"
    if isinstance(sample, str) and hh.is_transcript(sample):
        return "hh"
    return "trl"


def _get(obj: dict, key: str) -> object:
    """A key's value; null counts as absent (Parquet and Hugging Face datasets write missing columns as null)."""
    value = obj.get(key)
    return MISSING if value is None else value


def _string(obj: dict, key: str, fmt: str, problems: Problems) -> str | None:
    value = _get(obj, key)
    if isinstance(value, list):
        problems.add(key, f"must be a string in the {fmt} format, got a list (message lists are the trl-chat format)")
        return None
    return check_text(value, key, problems)


def _messages(obj: dict, key: str, fmt: str, problems: Problems) -> list[dict[str, str]] | None:
    value = _get(obj, key)
    if value is MISSING:
        problems.add(key, "is required")
        return None
    if not isinstance(value, list):
        problems.add(key, f'must be a list of {{"role", "content"}} messages in the {fmt} format, got {kind(value)}')
        return None
    return check_chat(value, problems, key, ends_with_user=False)


def _response(messages: list[dict[str, str]], key: str, start: int, problems: Problems) -> str | None:
    """The single assistant message after the prompt (messages[start:])."""
    rest = messages[start:]
    if len(rest) != 1:
        where = " after the prompt it shares with the other response" if start else ""
        problems.add(key, f"must hold exactly one assistant message (the response){where}, got {len(rest)}")
        return None
    if rest[0]["role"] != "assistant":
        problems.add(f"{key}[{start}].role", f'must be "assistant" (the response), got "{rest[0]["role"]}"')
        return None
    return rest[0]["content"]


def _shared_conversation(
    chosen: list[dict[str, str]], rejected: list[dict[str, str]], problems: Problems, *, may_share_nothing: bool = False
) -> tuple[list[dict[str, str]], str, str] | None:
    """Implicit prompt in message lists: the leading messages both share, then one assistant message each."""
    k = 0
    while k < min(len(chosen), len(rejected)) and chosen[k] == rejected[k]:
        k += 1
    if k == 0 and not may_share_nothing:
        problems.add(
            "rejected",
            'shares no leading message with chosen; without a "prompt", chosen and rejected hold '
            "the whole conversation and must begin with the same prompt messages",
        )
        return None
    if k and chosen[k - 1]["role"] != "user":
        problems.add(
            f"chosen[{k - 1}].role",
            f'the prompt that chosen and rejected share must end with a user message, got "{chosen[k - 1]["role"]}"',
        )
        return None
    c, r = _response(chosen, "chosen", k, problems), _response(rejected, "rejected", k, problems)
    return None if c is None or r is None else (chosen[:k], c, r)


def _trl_pair(obj: dict, problems: Problems) -> _Pair | None:
    chosen, rejected = _string(obj, "chosen", "trl", problems), _string(obj, "rejected", "trl", problems)
    if _get(obj, "prompt") is not MISSING:
        prompt = _string(obj, "prompt", "trl", problems)
        if prompt is None or chosen is None or rejected is None:
            return None
        if hh.is_prompt(prompt):  # the export's template=hh
            messages = _hh_turns(prompt[: -len(hh.ASSISTANT)], problems, "prompt")
            if messages is None:
                return None
            return _Pair(messages, len(messages) > 1, hh.turn_text(chosen), hh.turn_text(rejected))
        return _Pair([{"role": "user", "content": prompt}], False, chosen, rejected)
    if chosen is None or rejected is None:
        return None
    cut = _prompt_end(chosen, rejected)
    if cut is None:
        problems.add(
            "rejected",
            'shares no prompt with chosen; without a "prompt", chosen and rejected must start '
            "with the same prompt followed by whitespace",
        )
        return None
    for key, text in (("chosen", chosen), ("rejected", rejected)):
        if not text[cut:].strip():
            problems.add(key, "has no response after the prompt it shares with the other response")
    if problems:
        return None
    return _Pair([{"role": "user", "content": chosen[:cut]}], False, chosen[cut:], rejected[cut:])


def _prompt_end(a: str, b: str) -> int | None:
    """Where the implicit prompt ends: the start of the last whitespace run inside the common prefix."""
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    j = n - 1
    while j >= 0 and not a[j].isspace():
        j -= 1
    while j > 0 and a[j - 1].isspace():
        j -= 1
    return j if j > 0 and a[:j].strip() else None


def _trl_chat_pair(obj: dict, problems: Problems) -> _Pair | None:
    chosen, rejected = _messages(obj, "chosen", "trl-chat", problems), _messages(obj, "rejected", "trl-chat", problems)
    prompt = _get(obj, "prompt")
    if prompt is MISSING:
        shared = _shared_conversation(chosen, rejected, problems) if chosen and rejected else None
        return _Pair(shared[0], True, shared[1], shared[2]) if shared else None
    if not isinstance(prompt, list):
        problems.add("prompt", f'must be a list of {{"role", "content"}} messages in the trl-chat format, got {kind(prompt)}')
        messages = None
    else:
        messages = check_chat(prompt, problems)
    c = _response(chosen, "chosen", 0, problems) if chosen else None
    r = _response(rejected, "rejected", 0, problems) if rejected else None
    return None if messages is None or c is None or r is None else _Pair(messages, True, c, r)


def _ultrafeedback_pair(obj: dict, problems: Problems) -> _Pair | None:
    prompt = _string(obj, "prompt", "ultrafeedback", problems)
    chosen = _messages(obj, "chosen", "ultrafeedback", problems)
    rejected = _messages(obj, "rejected", "ultrafeedback", problems)
    if prompt is None or not chosen or not rejected:
        return None
    shared = _shared_conversation(chosen, rejected, problems, may_share_nothing=True)
    if shared is None:
        return None
    messages, c, r = shared
    if not messages:  # the lists hold only the responses: the prompt string is the user turn
        messages = [{"role": "user", "content": prompt}]
    elif messages[-1]["content"].strip() != prompt.strip():
        problems.add("prompt", "differs from the last user message that chosen and rejected share")
        return None
    return _Pair(messages, len(messages) > 1, c, r)


def _hh_pair(obj: dict, problems: Problems) -> _Pair | None:
    if _get(obj, "prompt") is not MISSING:
        problems.add("prompt", "is not part of the hh format: the transcripts in chosen and rejected hold the prompt")
    chosen, rejected = _string(obj, "chosen", "hh", problems), _string(obj, "rejected", "hh", problems)
    c = _hh_split(chosen, "chosen", problems) if chosen else None
    r = _hh_split(rejected, "rejected", problems) if rejected else None
    if c is None or r is None or problems:
        return None
    if c[0] != r[0]:
        at = next((i for i, (x, y) in enumerate(zip(c[0], r[0], strict=False)) if x != y), min(len(c[0]), len(r[0])))
        problems.add(
            "rejected",
            f"does not share the conversation before the last Assistant turn with chosen (they differ from character {at + 1})",
        )
        return None
    messages = _hh_turns(c[0], problems)
    return None if messages is None else _Pair(messages, len(messages) > 1, c[1], r[1])


def _hh_split(text: str, key: str, problems: Problems) -> tuple[str, str] | None:
    try:
        return hh.split_response(text)
    except hh.TranscriptError as exc:
        problems.add(key, str(exc))
        return None


def _hh_turns(conversation: str, problems: Problems, key: str = "chosen") -> list[dict[str, str]] | None:
    try:
        return hh.turns(conversation)
    except hh.TranscriptError as exc:
        problems.add(key, str(exc))
        return None


def _tie(obj: dict, problems: Problems) -> bool:
    """The reference is a tie: "tie" is true (the export's rows with ties=keep) or the scores are equal."""
    flag = _get(obj, "tie")
    if flag is not MISSING and not isinstance(flag, bool):
        problems.add("tie", f"must be true or false, got {kind(flag)}")
    return _scores_tie(obj, problems) or flag is True


def _scores_tie(obj: dict, problems: Problems) -> bool:
    """score_chosen == score_rejected makes the reference a tie; chosen must not score lower."""
    scores = {key: _get(obj, key) for key in ("score_chosen", "score_rejected")}
    if all(v is MISSING for v in scores.values()):
        return False
    before = len(problems)
    for key, value in scores.items():
        other = "score_rejected" if key == "score_chosen" else "score_chosen"
        if value is MISSING:
            problems.add(key, f"is required when {other} is given")
        elif isinstance(value, bool) or not isinstance(value, int | float):
            problems.add(key, f"must be a number, got {kind(value)}")
    # NaN (Parquet) compares unequal to everything: no tie; the metadata check names it.
    if len(problems) > before:
        return False
    chosen_score, rejected_score = scores["score_chosen"], scores["score_rejected"]
    if not isinstance(chosen_score, int | float) or not isinstance(rejected_score, int | float):
        return False  # unreachable: the checks above added a problem
    if chosen_score < rejected_score:
        problems.add(
            "score_chosen",
            f"is lower than score_rejected ({scores['score_chosen']} < "
            f"{scores['score_rejected']}); the chosen response must not score lower",
        )
        return False
    return scores["score_chosen"] == scores["score_rejected"]


_PAIR_PARSERS = {"trl": _trl_pair, "trl-chat": _trl_chat_pair, "hh": _hh_pair, "ultrafeedback": _ultrafeedback_pair}


def read_pair(obj: dict, problems: Problems) -> tuple[list[dict[str, str]], str, str] | None:
    """A preference record's prompt (chat messages) and chosen and rejected texts, read as the import reads them (its
    format told by its keys): reward-model score files (app/rewardmodels/parsing.py) find the pair this way."""
    pair = _PAIR_PARSERS[detect_preference_format(obj)](obj, problems)
    return None if pair is None else (pair.messages, pair.chosen, pair.rejected)
