"""app/hh.py: the Human/Assistant transcript, written by the export and read by the import, reads back what it wrote."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app import hh

PROPERTY = settings(
    max_examples=200, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow]
)

# Texts made of the characters a transcript is built from, so markers and near-markers come up often.
pieces = st.sampled_from(["\n", " ", "Human", "Assistant", "System", ":", "x", "é"])
content = (
    st.lists(pieces, max_size=12)
    .map("".join)
    .filter(lambda text: text.strip() and not any(marker in text for marker in (hh.HUMAN, hh.ASSISTANT, hh.SYSTEM)))
)


def messages(roles: list[str], min_size: int, max_size: int):
    return st.lists(st.tuples(st.sampled_from(roles), content), min_size=min_size, max_size=max_size).map(
        lambda pairs: [{"role": role, "content": text} for role, text in pairs]
    )


# A transcript opens with a Human (or System) turn; the prompt ends with the user turn the responses answer.
conversation = st.tuples(
    messages(["system", "user"], 1, 1), messages(["user", "assistant", "system"], 0, 4), messages(["user"], 1, 1)
).map(lambda parts: [*parts[0], *parts[1], *parts[2]])


@PROPERTY
@given(conversation, content)
def test_what_the_export_writes_the_import_reads_back(chat, response):
    transcript = hh.prompt(chat) + hh.completion(response)
    assert hh.is_transcript(transcript)
    before, last = hh.split_response(transcript)
    assert last == response
    assert hh.turns(before) == chat
    assert hh.is_prompt(hh.prompt(chat))


def test_a_prompt_is_written_as_speaker_turns_ending_in_the_empty_assistant_turn():
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    assert hh.prompt(messages) == "\n\nSystem: Be brief.\n\nHuman: Hi\n\nAssistant:"
    assert hh.completion("Hello") == " Hello"


@pytest.mark.parametrize(
    ("transcript", "message"),
    [
        ("\n\nHuman: Hi", 'no "\\n\\nAssistant:" turn'),
        ("\n\nHuman: Hi\n\nAssistant: Hello\n\nHuman: Bye", 'a "\\n\\nHuman:" turn follows the last one'),
        ("\n\nHuman: Hi\n\nAssistant:  ", "the last Assistant turn (the response) is empty"),
    ],
)
def test_a_transcript_without_a_final_response_is_refused_saying_why(transcript, message):
    with pytest.raises(hh.TranscriptError) as error:
        hh.split_response(transcript)
    assert message in str(error.value)


@pytest.mark.parametrize(
    ("conversation", "message"),
    [
        ("Hi", 'must start with a "\\n\\nHuman:" turn'),
        ("\n\nHuman:  \n\nAssistant: x\n\nHuman: y", "turn 1 (Human) of the prompt is empty"),
        ("\n\nHuman: Hi\n\nAssistant: Hello", "the turn before the last Assistant turn must be a Human turn"),
    ],
)
def test_a_conversation_that_is_not_a_prompt_is_refused_saying_why(conversation, message):
    with pytest.raises(hh.TranscriptError) as error:
        hh.turns(conversation)
    assert message in str(error.value)
