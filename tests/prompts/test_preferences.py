"""Preference records (trl, trl-chat, hh, ultrafeedback) through the streaming parser: what each format becomes,
the reference it carries, the stored response order, and errors that name the line and the field."""

import io
import json

import pytest

from app.prompts.upload import ParsedPrompt, ParseError, content_digest, parse_batch


def parse(records, fmt="auto", *, filename="prefs.jsonl", lo=2, hi=2, raw: bytes | None = None) -> list:
    data = raw if raw is not None else "".join(json.dumps(r) + "\n" for r in records).encode()
    return list(parse_batch(io.BytesIO(data), filename=filename, min_responses=lo, max_responses=hi, record_format=fmt))


def pairs(records, fmt="auto", **kwargs) -> list[ParsedPrompt]:
    items = parse(records, fmt, **kwargs)
    assert not [str(i) for i in items if isinstance(i, ParseError)]
    return items


def errors(records, fmt="auto", **kwargs) -> list[str]:
    return [str(i) for i in parse(records, fmt, **kwargs) if isinstance(i, ParseError)]


def chosen_rejected(p: ParsedPrompt) -> tuple[str, str] | str:
    """The responses the reference ranks first and second ("tie" for a tie), read back through the positions."""
    if len(p.reference) == 1:
        return "tie"
    (best,), (worst,) = p.reference
    return p.responses[best].text, p.responses[worst].text


def msg(role, content):
    return {"role": role, "content": content}


class TestFormats:
    def test_trl_explicit_prompt_and_extra_columns_of_the_v1_export(self):
        row = {
            "prompt": "How do I reverse a list?",
            "chosen": "l[::-1]",
            "rejected": "Use reversed()",
            "prompt_id": "q-1",
            "annotator_id": 3,
            "annotation_id": 17,
            "chosen_response_id": 42,
            "rejected_response_id": 41,
        }
        (p,) = pairs([row])
        assert p.messages == [msg("user", "How do I reverse a list?")] and not p.is_chat
        assert chosen_rejected(p) == ("l[::-1]", "Use reversed()")
        digest = content_digest(p.messages, ["l[::-1]", "Use reversed()"])
        assert p.external_id == f"q-1:{digest[:12]}"
        assert p.metadata == {k: v for k, v in row.items() if k not in ("prompt", "chosen", "rejected")}
        assert p.reference_source == "trl: prefs.jsonl"

    def test_trl_prompt_in_the_hh_template_is_read_as_its_turns(self):
        """Preflab's default trl export: the prompt in the HH template, responses after one space (which is dropped)."""
        row = {
            "prompt": "\n\nSystem: Be brief.\n\nHuman:  Hi!\n\nAssistant: Hello.\n\nHuman: And?\n\nAssistant:",
            "chosen": "  two spaces",
            "rejected": " one\n",
        }
        (p,) = pairs([row], "trl")
        assert p.messages == [msg("system", "Be brief."), msg("user", " Hi!"), msg("assistant", "Hello."), msg("user", "And?")]
        assert p.is_chat and chosen_rejected(p) == (" two spaces", "one\n")
        (q,) = pairs([{"prompt": "\n\nHuman: Q\n\nAssistant:", "chosen": "a", "rejected": " b"}])
        assert q.messages == [msg("user", "Q")] and not q.is_chat and chosen_rejected(q) == ("a", "b")

    def test_hh_keeps_whitespace_but_the_one_space_after_the_speaker(self):
        shared = "\n\nSystem: Sys\n\nHuman:  padded \n"
        (p,) = pairs([{"chosen": shared + "\n\nAssistant:  two\n", "rejected": shared + "\n\nAssistant:one"}])
        assert p.messages == [msg("system", "Sys"), msg("user", " padded \n")]
        assert chosen_rejected(p) == (" two\n", "one") and p.reference_source == "hh: prefs.jsonl"

    def test_tie_column_gives_a_tied_reference_and_an_order_free_id(self):
        x, y = ({"prompt_id": "q", "prompt": "P", "chosen": a, "rejected": b, "tie": True} for a, b in (("x", "y"), ("y", "x")))
        p, q = pairs([x, y])
        assert p.reference == q.reference == [[0, 1]] and p.external_id == q.external_id
        (r,) = pairs([x | {"tie": False}])
        assert chosen_rejected(r) == ("x", "y") and r.external_id != p.external_id and "tie" not in (r.metadata or {})

    def test_trl_implicit_prompt_splits_like_trl_extract_prompt(self):
        (p,) = pairs([{"chosen": "The sky is blue.", "rejected": "The sky is green."}])
        assert p.messages == [msg("user", "The sky is")]
        assert chosen_rejected(p) == (" blue.", " green.")
        assert p.external_id == "sha256:" + content_digest(p.messages, [" blue.", " green."])[:32]
        # The split is at a word boundary even when the texts diverge inside a word.
        (q,) = pairs([{"chosen": "Answer:\n the number 42", "rejected": "Answer:\n the number 43"}])
        assert q.messages[0]["content"] == "Answer:\n the number" and chosen_rejected(q) == (" 42", " 43")

    def test_trl_chat_explicit_and_implicit_give_the_same_item(self):
        prompt = [msg("system", "Be brief."), msg("user", "Sky colour?")]
        explicit = {"prompt": prompt, "chosen": [msg("assistant", "Blue.")], "rejected": [msg("assistant", "Green.")]}
        implicit = {"chosen": [*prompt, msg("assistant", "Blue.")], "rejected": [*prompt, msg("assistant", "Green.")]}
        a, b = pairs([explicit, implicit])
        for p in (a, b):
            assert p.messages == prompt and p.is_chat and chosen_rejected(p) == ("Blue.", "Green.")
            assert p.reference_source == "trl-chat: prefs.jsonl"
        assert a.external_id == b.external_id  # same content: a re-upload in the other form is skipped

    def test_hh_transcripts_become_chat_turns(self):
        shared = "\n\nHuman: What is a mole?\n\nAssistant: An animal, or a unit.\n\nHuman: The unit, please."
        row = {"chosen": shared + "\n\nAssistant: 6.022e23 entities.", "rejected": shared + "\n\nAssistant: A small mammal."}
        (p,) = pairs([row])
        assert p.messages == [
            msg("user", "What is a mole?"),
            msg("assistant", "An animal, or a unit."),
            msg("user", "The unit, please."),
        ]
        assert p.is_chat and chosen_rejected(p) == ("6.022e23 entities.", "A small mammal.")
        assert p.reference_source == "hh: prefs.jsonl"
        (single,) = pairs(
            [{"chosen": "\n\nHuman: Hi\n\nAssistant: Hello!", "rejected": "\n\nHuman: Hi\n\nAssistant: Go away."}], "hh"
        )
        assert single.messages == [msg("user", "Hi")] and not single.is_chat

    def test_ultrafeedback_rows_with_scores_and_ties(self):
        def row(i, score_chosen, score_rejected):
            prompt = f"Question {i}?"
            return {
                "prompt": prompt,
                "prompt_id": f"{i:064x}",
                "score_chosen": score_chosen,
                "score_rejected": score_rejected,
                "chosen": [msg("user", prompt), msg("assistant", f"good {i}")],
                "rejected": [msg("user", prompt), msg("assistant", f"bad {i}")],
                "messages": [msg("user", prompt), msg("assistant", f"good {i}")],
            }

        strict, tie = pairs([row(1, 8.5, 6.0), row(2, 7.0, 7.0)])
        assert strict.messages == [msg("user", "Question 1?")] and not strict.is_chat
        assert chosen_rejected(strict) == ("good 1", "bad 1")
        assert strict.metadata == {"prompt_id": f"{1:064x}", "score_chosen": 8.5, "score_rejected": 6.0}  # messages dropped
        assert strict.external_id.startswith(f"{1:064x}:")
        assert tie.reference == [[0, 1]] and {r.text for r in tie.responses} == {"good 2", "bad 2"}
        assert strict.reference_source == "ultrafeedback: prefs.jsonl"
        # The message lists may hold only the responses: the prompt string is then the user turn.
        (short,) = pairs([{"prompt": "Hi?", "chosen": [msg("assistant", "Hello")], "rejected": [msg("assistant", "No")]}])
        assert short.messages == [msg("user", "Hi?")] and chosen_rejected(short) == ("Hello", "No")

    def test_json_array_and_explicit_id(self):
        data = json.dumps([{"id": 7, "prompt": "p", "chosen": "a", "rejected": "b"}]).encode()
        (p,) = pairs(None, raw=data, filename="prefs.json")
        assert p.external_id == "7" and p.location == "item 1 (line 1)" and chosen_rejected(p) == ("a", "b")

    def test_prompt_and_preference_records_mix_in_auto(self):
        a, b = pairs([{"id": "x", "prompt": "p", "responses": ["r1", "r2"]}, {"prompt": "p", "chosen": "a", "rejected": "b"}])
        assert a.reference is None and a.reference_source is None
        assert b.reference is not None


class TestResponseOrder:
    def test_chosen_is_not_always_first_and_the_order_is_drawn_at_random(self):
        rows = [{"prompt": f"question {i}", "chosen": f"good {i}", "rejected": f"bad {i}"} for i in range(200)]
        first, again = pairs(rows), pairs(rows)
        chosen_first = sum(p.reference == [[0], [1]] for p in first)
        assert 60 <= chosen_first <= 140  # about half, never all
        for p in first:
            assert chosen_rejected(p)[0].startswith("good")
            assert [r.text for r in p.responses] == sorted((r.text for r in p.responses), reverse=p.reference == [[0], [1]])
        # The same rows keep their ids, but not their order: no function of the content decides it (issue #11).
        assert [p.external_id for p in again] == [p.external_id for p in first]
        same_order = sum(a.reference == b.reference for a, b in zip(first, again, strict=True))
        assert 60 <= same_order <= 140


HH_OK = "\n\nHuman: Hi\n\nAssistant: Hello"


class TestErrors:
    @pytest.mark.parametrize(
        ("record", "fmt", "expected"),
        [
            ({"prompt": "p", "chosen": "same", "rejected": "same"}, "auto", 'line 1, field "rejected": is the same as chosen'),
            ({"prompt": "p", "chosen": "  ", "rejected": "b"}, "auto", 'line 1, field "chosen": must not be empty'),
            ({"prompt": "", "chosen": "a", "rejected": "b"}, "trl", 'line 1, field "prompt": must not be empty'),
            ({"prompt": "p", "chosen": "a"}, "auto", 'line 1, field "rejected": is required'),
            (
                {"chosen": HH_OK, "rejected": "\n\nHuman: Hey\n\nAssistant: Yo"},
                "auto",
                'line 1, field "rejected": does not share the conversation before the last Assistant turn with chosen '
                "(they differ from character 11)",
            ),
            (
                {"chosen": HH_OK + "\n\nHuman: and?", "rejected": "\n\nHuman: Hi\n\nAssistant: Go"},
                "hh",
                'line 1, field "chosen": must end with an Assistant turn',
            ),
            (
                {"chosen": "\n\nHuman: Hi there", "rejected": "\n\nHuman: Hi you"},
                "hh",
                'line 1, field "chosen": is not an HH transcript: it has no "\\n\\nAssistant:" turn',
            ),
            (
                {"chosen": HH_OK, "rejected": "\n\nHuman: Hi\n\nAssistant:  "},
                "hh",
                'line 1, field "rejected": the last Assistant turn (the response) is empty',
            ),
            (
                {"chosen": "Preamble" + HH_OK, "rejected": "Preamble\n\nHuman: Hi\n\nAssistant: Go"},
                "hh",
                'line 1, field "chosen": must start with a "\\n\\nHuman:" turn',
            ),
            (
                {"prompt": "p", "chosen": HH_OK, "rejected": HH_OK + "!"},
                "hh",
                'line 1, field "prompt": is not part of the hh format',
            ),
            ({"chosen": "blue", "rejected": "green"}, "trl", 'line 1, field "rejected": shares no prompt with chosen'),
            (
                {"prompt": "p", "chosen": [msg("assistant", "a")], "rejected": "b"},
                "trl",
                'line 1, field "chosen": must be a string in the trl format, got a list',
            ),
            (
                {
                    "prompt": [msg("user", "p")],
                    "chosen": [msg("assistant", "a"), msg("assistant", "b")],
                    "rejected": [msg("assistant", "c")],
                },
                "trl-chat",
                'line 1, field "chosen": must hold exactly one assistant message (the response), got 2',
            ),
            (
                {"prompt": [msg("user", "p")], "chosen": [msg("user", "a")], "rejected": [msg("assistant", "c")]},
                "trl-chat",
                'line 1, field "chosen[0].role": must be "assistant"',
            ),
            (
                {"prompt": [msg("user", "p")], "chosen": [msg("assistant", "")], "rejected": [msg("assistant", "c")]},
                "auto",
                'line 1, field "chosen[0].content": must not be empty',
            ),
            (
                {"chosen": [msg("user", "p"), msg("assistant", "a")], "rejected": [msg("user", "q"), msg("assistant", "b")]},
                "auto",
                'line 1, field "rejected": shares no leading message with chosen',
            ),
            (
                {
                    "prompt": "Other?",
                    "chosen": [msg("user", "p"), msg("assistant", "a")],
                    "rejected": [msg("user", "p"), msg("assistant", "b")],
                },
                "ultrafeedback",
                'line 1, field "prompt": differs from the last user message',
            ),
            (
                {"prompt": "p", "chosen": "a", "rejected": "b", "score_chosen": 1, "score_rejected": 2},
                "auto",
                'line 1, field "score_chosen": is lower than score_rejected (1 < 2)',
            ),
            (
                {"prompt": "p", "chosen": "a", "rejected": "b", "score_chosen": 1},
                "auto",
                'line 1, field "score_rejected": is required when score_chosen is given',
            ),
            (
                {"prompt": "p", "chosen": "a", "rejected": "b", "score_chosen": "high", "score_rejected": 1},
                "auto",
                'line 1, field "score_chosen": must be a number, got a string',
            ),
            (
                {"prompt": "p", "chosen": "a", "rejected": "b", "prompt_id": "x" * 190},
                "auto",
                'line 1, field "prompt_id": must be at most 187 characters, got 190',
            ),
            (
                {"prompt": "p", "chosen": "a", "rejected": "b", "prompt_id": ["x"]},
                "auto",
                'line 1, field "prompt_id": must be a string, got an array',
            ),
            (
                {"prompt": "p", "chosen": "a", "rejected": "b", "responses": ["a", "b"]},
                "auto",
                'line 1, field "responses": a preference record has "chosen" and "rejected" instead',
            ),
            (
                {"prompt": "p", "chosen": "a", "rejected": "b", "extra": "nul\u0000"},
                "auto",
                'line 1, field "extra": contains a NUL character',
            ),
            ({"prompt": "p", "responses": ["a", "b"]}, "trl", 'line 1, field "chosen": is required'),
            ({"prompt": "p", "chosen": "a", "rejected": "b"}, "prompts", 'line 1, field "chosen": unknown key'),
        ],
    )
    def test_bad_record_names_line_and_field(self, record, fmt, expected):
        found = errors([record], fmt)
        assert any(e.startswith(expected) for e in found), found

    def test_errors_of_later_lines_and_duplicate_ids(self):
        rows = [{"id": "a", "prompt": "p", "chosen": "x", "rejected": "y"}] * 2 + [
            {"prompt": "p", "chosen": "x", "rejected": "x"}
        ]
        found = errors(rows)
        assert found[0].startswith('line 2, field "id": duplicate id "a", first seen on line 1')
        assert found[1].startswith('line 3, field "rejected"')

    def test_ranking_project_gets_one_clear_error(self):
        rows = [{"prompt": f"p{i}", "chosen": "a", "rejected": "b"} for i in range(100)]
        found = errors([{"prompt": "p", "responses": ["a", "b", "c"]}, *rows], lo=2, hi=9)
        assert found == [
            "line 2: preference records (chosen/rejected) can only be imported into a pairwise project; this is a ranking project"
        ]

    def test_unknown_format_and_csv(self):
        assert errors([{"prompt": "p", "chosen": "a", "rejected": "b"}], "dpo") == [
            'unknown format "dpo"; choose from auto, prompts, trl, trl-chat, hh, ultrafeedback, listwise'
        ]
        assert errors(None, "trl", raw=b"prompt,chosen,rejected\np,a,b\n", filename="x.csv") == [
            "the trl format is read from JSON Lines, a JSON array or Parquet, not CSV"
        ]


class TestParquet:
    """Hugging Face datasets ship Parquet: rows are read a record batch at a time, errors name the row."""

    @staticmethod
    def parquet(rows: list[dict], row_group_size: int | None = None) -> bytes:
        import pyarrow as pa
        import pyarrow.parquet as pq

        out = io.BytesIO()
        pq.write_table(pa.Table.from_pylist(rows), out, row_group_size=row_group_size)
        return out.getvalue()

    def uf_row(self, i, score_chosen=8.0, score_rejected=5.0):
        prompt = f"Question {i}?"
        return {
            "prompt": prompt,
            "prompt_id": f"id{i}",
            "score_chosen": score_chosen,
            "score_rejected": score_rejected,
            "chosen": [msg("user", prompt), msg("assistant", f"good {i}")],
            "rejected": [msg("user", prompt), msg("assistant", f"bad {i}")],
            "messages": [msg("user", prompt), msg("assistant", f"good {i}")],
        }

    def test_ultrafeedback_parquet_over_several_batches(self):
        rows = [self.uf_row(i) for i in range(2500)]
        items = pairs(None, raw=self.parquet(rows, row_group_size=700), filename="train_prefs-00000-of-00001.parquet")
        assert len(items) == 2500 and items[-1].location == "row 2500"
        assert all(chosen_rejected(p) == (f"good {i}", f"bad {i}") for i, p in enumerate(items))
        assert items[0].reference_source == "ultrafeedback: train_prefs-00000-of-00001.parquet"

    def test_prompt_records_and_errors_name_the_row(self):
        bad = errors(None, raw=self.parquet([self.uf_row(1), self.uf_row(2, float("nan"), 1.0)]), filename="x.parquet")
        assert bad == ['row 2, field "score_chosen": must be a finite number, got nan']
        plain = pairs(
            None, raw=self.parquet([{"id": "a", "prompt": "p", "responses": ["x", "y"], "metadata": None}]), filename="x.parquet"
        )
        assert plain[0].external_id == "a" and plain[0].reference is None
        nan_meta = errors(
            None,
            raw=self.parquet([{"prompt": "p", "chosen": "a", "rejected": "b", "margin": float("inf")}]),
            filename="x.parquet",
        )
        assert nan_meta == ['row 1, field "margin": must be a finite number, got inf']

    def test_unreadable_or_unseekable_parquet(self):
        data = self.parquet([self.uf_row(1)])
        broken = errors(None, raw=data[:-20], filename="x.parquet")
        assert len(broken) == 1 and broken[0].startswith("not a readable Parquet file")

        class Pipe(io.RawIOBase):  # a stream that can't seek, like a socket
            def __init__(self):
                self._data = io.BytesIO(data)

            def readable(self):
                return True

            def readinto(self, buffer):
                chunk = self._data.read(len(buffer))
                buffer[: len(chunk)] = chunk
                return len(chunk)

        found = [str(i) for i in parse_batch(Pipe(), filename="x.parquet", min_responses=2, max_responses=2)]
        assert len(found) == 1 and found[0].startswith("not a readable Parquet file")
