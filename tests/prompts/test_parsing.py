import io
import json
import tempfile
from collections.abc import Iterator

import pytest

from app.prompts.upload import (
    SUPPORTED_EXTENSIONS,
    ErrorCollector,
    ParsedPrompt,
    ParsedResponse,
    ParseError,
    UnsupportedFormatError,
    detect_format,
    parse_batch,
)


def parse(data: bytes | str, filename: str = "batch.jsonl", *, lo: int = 2, hi: int = 9) -> list:
    raw = data.encode() if isinstance(data, str) else data
    return list(parse_batch(io.BytesIO(raw), filename=filename, min_responses=lo, max_responses=hi))


def errors(data: bytes | str, filename: str = "batch.jsonl", **bounds: int) -> list[str]:
    return [str(item) for item in parse(data, filename, **bounds) if isinstance(item, ParseError)]


def prompts(data: bytes | str, filename: str = "batch.jsonl", **bounds: int) -> list[ParsedPrompt]:
    items = parse(data, filename, **bounds)
    assert not [item for item in items if isinstance(item, ParseError)]
    return items


def jsonl(*records: object) -> str:
    return "".join(json.dumps(record) + "\n" for record in records)


def ok(**extra: object) -> dict:
    return {"prompt": "Say hi", "responses": ["hi", "hello"], **extra}


class TestHappyPaths:
    def test_jsonl_plain_and_chat_prompts_with_response_objects(self) -> None:
        chat = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi?"}]
        data = jsonl(
            {"id": "a", "prompt": "Say hi", "responses": ["hi", "hello"], "metadata": {"src": "x", "n": [1, 2.5]}},
            {"id": 7, "prompt": chat, "responses": [{"text": "Hey", "model": "m1", "metadata": {"t": 0.7}}, "Yo"]},
        )
        first, second = prompts(data)
        assert first == ParsedPrompt(
            location="line 1",
            external_id="a",
            messages=[{"role": "user", "content": "Say hi"}],
            is_chat=False,
            responses=[ParsedResponse("hi", None, None), ParsedResponse("hello", None, None)],
            metadata={"src": "x", "n": [1, 2.5]},
        )
        assert second.location == "line 2"
        assert second.external_id == "7"
        assert second.is_chat and second.messages == chat
        assert second.responses == [ParsedResponse("Hey", "m1", {"t": 0.7}), ParsedResponse("Yo", None, None)]

    def test_jsonl_blank_lines_crlf_and_bom(self) -> None:
        data = b"\xef\xbb\xbf" + jsonl(ok(id="a")).replace("\n", "\r\n").encode() + b"\r\n  \r\n" + jsonl(ok()).encode()
        first, second = prompts(data)
        assert (first.external_id, first.location, second.location) == ("a", "line 1", "line 4")
        assert first.responses[1].text == "hello"  # no stray "\r"

    def test_json_array_items_carry_the_line_they_start_on(self) -> None:
        data = json.dumps([ok(id=1), ok(id=2, metadata={"k": [1, {"x": None}]})], indent=2)
        first, second = prompts(data, "batch.json")
        assert first.location == "item 1 (line 2)"
        assert second.location == f"item 2 (line {data.splitlines().index('  {', 2) + 1})"
        assert (first.external_id, second.metadata) == ("1", {"k": [1, {"x": None}]})
        assert isinstance(second.metadata["k"][0], int)

    def test_json_array_with_bom_crlf_and_floats(self) -> None:
        data = "\ufeff[\r\n" + json.dumps(ok(metadata={"score": 0.25})) + "\r\n]\r\n"
        [prompt] = prompts(data.encode(), "batch.json")
        assert prompt.metadata == {"score": 0.25} and type(prompt.metadata["score"]) is float

    def test_csv_with_models_metadata_and_multiline_cells(self) -> None:
        data = (
            "id,prompt,response_1,model_1,response_2,model_2,response_3,metadata\r\n"
            'p1,"Two\r\nlines","A\nB",m1,C,,,"{""k"": 1}"\r\n'
            "p2,Plain,x,,y,m2,z,\r\n"
        )
        first, second = prompts(data, "batch.csv")
        assert first.location == "row 2"
        assert first.messages == [{"role": "user", "content": "Two\r\nlines"}] and not first.is_chat
        assert first.responses == [ParsedResponse("A\nB", "m1", None), ParsedResponse("C", None, None)]
        assert first.metadata == {"k": 1}
        assert second.location == "row 3 (line 5)"  # row 2's quoted cells span lines 2-4
        assert [r.model for r in second.responses] == [None, "m2", None]

    def test_csv_semicolons_bom_short_rows_and_blank_rows(self) -> None:
        data = "\ufeffPrompt ; Response_1;response_2;response_3\nq;a;b\n;;;\n\nq2;a;b;c\n"
        first, second = prompts(data.encode(), "BATCH.CSV")
        assert len(first.responses) == 2 and first.external_id is None
        assert second.location == "row 5" and len(second.responses) == 3

    def test_long_responses(self) -> None:
        long = "word " * 2_000 + "\u00e9" * 10_000
        [prompt] = prompts(jsonl(ok(responses=[long, long * 20])))
        assert prompt.responses[1].text == long * 20
        [prompt] = prompts(json.dumps([ok(responses=[long, long])]), "batch.json")
        assert prompt.responses[0].text == long
        csv_data = f'prompt,response_1,response_2\n"{long}",{long},"x"\n'
        [prompt] = prompts(csv_data, "batch.csv")
        assert prompt.responses[0].text == long

    def test_reads_a_spooled_upload(self) -> None:
        with tempfile.SpooledTemporaryFile(max_size=1024) as upload:
            upload.write(jsonl(*(ok(id=i) for i in range(100))).encode())
            upload.seek(0)
            items = list(parse_batch(upload, filename="up.jsonl", min_responses=2, max_responses=2))
        assert [p.external_id for p in items] == [str(i) for i in range(100)]


class TestDetectFormat:
    @pytest.mark.parametrize(
        ("filename", "first", "expected"),
        [
            ("a.jsonl", b'{"p"', "jsonl"),
            ("a.NDJSON", b"", "jsonl"),
            ("a.json", b"  \n[", "json"),
            ("a.json", b'{"prompt"', "jsonl"),  # JSON Lines saved as .json (Dataset.to_json does this)
            ("a.jsonl", b"[{", "json"),
            ("a.Csv", b"[odd,header", "csv"),
            ("C:\\fakepath\\batch.CSV", b"prompt", "csv"),
            ("upload", b"\xef\xbb\xbf [", "json"),
            ("data.txt", b"{", "jsonl"),
            ("train-00000-of-00001.parquet", b"PAR1\x15\x04", "parquet"),
            ("upload", b"PAR1", "parquet"),
        ],
    )
    def test_detects(self, filename: str, first: bytes, expected: str) -> None:
        assert detect_format(filename, first) == expected

    def test_unknown_extension_without_json_is_rejected(self) -> None:
        with pytest.raises(UnsupportedFormatError, match=r'"data.txt".*\.jsonl, \.ndjson, \.json, \.csv, \.parquet'):
            detect_format("data.txt", b"prompt,response_1")
        assert SUPPORTED_EXTENSIONS == (".jsonl", ".ndjson", ".json", ".csv", ".parquet")
        assert errors("prompt,response_1\n", "data.xlsx") == [
            'cannot tell the format of "data.xlsx"; upload a file ending in .jsonl, .ndjson, .json, .csv, .parquet'
        ]

    def test_utf16_is_named(self) -> None:
        utf16 = "prompt,response_1\n".encode("utf-16")
        assert errors(utf16, "a.csv") == ["the file is UTF-16 encoded; save it as UTF-8"]

    @pytest.mark.parametrize("filename", ["a.jsonl", "a.json", "a.csv"])
    def test_empty_files(self, filename: str) -> None:
        assert errors(b"\xef\xbb\xbf \r\n\n", filename) == ["the file is empty"]

    @pytest.mark.parametrize(("data", "filename"), [("[]", "a.json"), ("prompt,response_1,response_2\n", "a.csv")])
    def test_files_without_prompts(self, data: str, filename: str) -> None:
        assert errors(data, filename) == ["the file contains no prompts"]


class TestRecordValidation:
    def test_bad_json_and_non_objects(self) -> None:
        data = '{"prompt": "x",\n[1, 2]\n"text"\n{"prompt": NaN, "responses": []}\n'
        assert errors(data) == [
            "line 1: not valid JSON: Expecting property name enclosed in double quotes at position 16",
            "line 2: must be a JSON object, got an array",
            "line 3: must be a JSON object, got a string",
            "line 4: not valid JSON: NaN is not allowed",
        ]

    def test_missing_fields_and_unknown_keys(self) -> None:
        assert errors(jsonl({"prompt": "x", "reponses": ["a", "b"]}, {"responses": ["a", "b"], "extra": 1})) == [
            'line 1, field "reponses": unknown key; allowed keys: id, prompt, responses, metadata (did you mean "responses"?)',
            'line 1, field "responses": is required',
            'line 2, field "extra": unknown key; allowed keys: id, prompt, responses, metadata',
            'line 2, field "prompt": is required',
        ]

    def test_prompt_types(self) -> None:
        data = jsonl(ok(prompt="  \n"), ok(prompt=5), ok(prompt=None), ok(prompt=[]))
        assert errors(data) == [
            'line 1, field "prompt": must not be empty',
            'line 2, field "prompt": must be a string or a list of messages, got a number',
            'line 3, field "prompt": must be a string or a list of messages, got null',
            'line 4, field "prompt": must not be an empty list',
        ]

    def test_chat_messages(self) -> None:
        data = jsonl(
            ok(prompt=[{"role": "user"}, {"role": "bot", "content": "x", "name": "n"}, "hi", {"content": 3}]),
            ok(prompt=[{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]),
            ok(prompt=[{"role": "system", "content": "s"}]),
        )
        assert errors(data) == [
            'line 1, field "prompt[0].content": is required',
            'line 1, field "prompt[1].name": unknown key; allowed keys: role, content',
            'line 1, field "prompt[1].role": must be one of system, user, assistant, got "bot"',
            'line 1, field "prompt[2]": must be an object with "role" and "content", got a string',
            'line 1, field "prompt[3].role": is required',
            'line 1, field "prompt[3].content": must be a string, got a number',
            'line 2, field "prompt[1].role": the last message must be from the user (the responses answer it), got "assistant"',
            'line 3, field "prompt[0].role": the last message must be from the user (the responses answer it), got "system"',
        ]

    def test_responses(self) -> None:
        data = jsonl(
            ok(responses="hi"),
            ok(responses=["a", " ", 3, {"text": ""}, {"model": "m"}, {"text": "b", "model": 4, "metadata": []}]),
            ok(responses=["a", {"text": "b", "score": 1, "model": ""}]),
        )
        assert errors(data) == [
            'line 1, field "responses": must be an array, got a string',
            'line 2, field "responses[1]": must not be empty',
            'line 2, field "responses[2]": must be a string or an object with "text", got a number',
            'line 2, field "responses[3].text": must not be empty',
            'line 2, field "responses[4].text": is required',
            'line 2, field "responses[5].model": must be a string, got a number',
            'line 2, field "responses[5].metadata": must be an object, got an array',
            'line 3, field "responses[1].score": unknown key; allowed keys: text, model, metadata',
        ]

    def test_response_count_bounds(self) -> None:
        data = jsonl(ok(responses=["a"]), ok(responses=["a", "b", "c"]), ok())
        assert errors(data, lo=2, hi=2) == [
            'line 1, field "responses": expected exactly 2 responses, got 1',
            'line 2, field "responses": expected exactly 2 responses, got 3',
        ]
        assert errors(jsonl(ok(responses=list("abcdefghij"))), lo=2, hi=9) == [
            'line 1, field "responses": expected 2 to 9 responses, got 10'
        ]
        with pytest.raises(ValueError):
            parse(jsonl(ok()), lo=3, hi=2)

    def test_ids(self) -> None:
        data = jsonl(ok(id=12), ok(id=1.0), ok(id=True), ok(id=""), ok(id="x" * 201), ok(id=["a"]), ok(id=None))
        assert errors(data) == [
            'line 2, field "id": must be a string or an integer, got a number',
            'line 3, field "id": must be a string or an integer, got a boolean',
            'line 4, field "id": must not be empty',
            'line 5, field "id": must be at most 200 characters, got 201',
            'line 6, field "id": must be a string or an integer, got an array',
        ]
        assert [p.external_id for p in prompts(jsonl(ok(id=12), ok(id="x" * 200), ok()))] == ["12", "x" * 200, None]

    def test_duplicate_ids_name_the_first_occurrence(self) -> None:
        data = jsonl(ok(id="p-7"), ok(id="p-8"), ok(id="p-7", prompt=""), ok(id=7), ok(id="7"))
        assert errors(data) == [
            'line 3, field "id": duplicate id "p-7", first seen on line 1',
            'line 3, field "prompt": must not be empty',
            'line 5, field "id": duplicate id "7", first seen on line 4',
        ]

    def test_metadata(self) -> None:
        data = jsonl(ok(metadata="x"), ok(metadata=[1]), ok(metadata=None), ok(metadata={}))
        assert errors(data) == [
            'line 1, field "metadata": must be an object, got a string',
            'line 2, field "metadata": must be an object, got an array',
        ]

    def test_nul_characters_and_surrogates(self) -> None:
        data = (
            jsonl(
                ok(prompt="a\x00b"),
                ok(responses=["ok", {"text": "x", "model": "m\x00"}]),
                ok(metadata={"a.b": {"c": ["\x00"]}, "k\x00": 1}),
            )
            + '{"prompt": "\\ud800", "responses": ["a", "b"]}\n'
        )
        assert errors(data) == [
            'line 1, field "prompt": contains a NUL character (\\x00) at position 2; remove it',
            'line 2, field "responses[1].model": contains a NUL character (\\x00) at position 2; remove it',
            'line 3, field "metadata["a.b"].c[0]": contains a NUL character (\\x00) at position 1; remove it',
            'line 3, field "metadata": key "k\\u0000" contains a NUL character (\\x00) at position 2; remove it',
            'line 4, field "prompt": contains an unpaired surrogate (\\ud800) at position 1',
        ]

    def test_raw_nul_byte_in_jsonl_is_bad_json(self) -> None:
        assert errors(b'{"prompt": "a\x00", "responses": ["a", "b"]}\n') == [
            "line 1: not valid JSON: Invalid control character at position 14"
        ]


class TestEncoding:
    def test_invalid_utf8_in_jsonl_names_each_line(self) -> None:
        good = jsonl(ok()).encode()
        data = good + b'{"prompt": "caf\xc3\xa9 \xff", "responses": ["a", "b"]}\n' + good + b"\xc3(\n" + good
        assert errors(data) == [
            "line 2: not valid UTF-8 (byte 0xff at position 18); save the file as UTF-8",
            "line 4: not valid UTF-8 (byte 0xc3 at position 1); save the file as UTF-8",
        ]
        assert len([p for p in parse(data) if isinstance(p, ParsedPrompt)]) == 3

    def test_invalid_utf8_in_json_array_stops_after_earlier_items(self) -> None:
        data = b"[\n" + json.dumps(ok()).encode() + b',\n{"prompt": "\xe9t\xe9", "responses": ["a", "b"]}\n]'
        items = parse(data, "batch.json")
        assert isinstance(items[0], ParsedPrompt)
        assert [str(e) for e in items[1:]] == ["line 3: not valid UTF-8 (byte 0xe9 at position 13); save the file as UTF-8"]

    def test_invalid_utf8_in_csv_reports_the_line_and_goes_on(self) -> None:
        data = b'prompt,response_1,response_2\nq,a,b\n"multi\nline \xff",a,b\nq,a,\n'
        assert errors(data, "batch.csv") == [
            "line 4: not valid UTF-8 (byte 0xff at position 6); save the file as UTF-8",
            "row 4 (line 5): expected 2 to 9 responses, got 1",
        ]


class TestJsonArray:
    def test_item_errors_name_item_and_line(self) -> None:
        data = '[\n  {"prompt": "x", "responses": ["a"]},\n  5,\n  {"prompt": "y",\n   "reponses": []}\n]'
        assert errors(data, "batch.json") == [
            'item 1 (line 2), field "responses": expected 2 to 9 responses, got 1',
            "item 2 (line 3): must be a JSON object, got a number",
            'item 3 (line 4), field "reponses": unknown key; allowed keys: id, prompt, responses, metadata '
            '(did you mean "responses"?)',
            'item 3 (line 4), field "responses": is required',
        ]

    def test_syntax_error_stops_with_its_line(self) -> None:
        data = "[\n" + json.dumps(ok()) + ",\n" + json.dumps(ok(id="a")) + ',\n{"prompt": }\n]'
        items = parse(data, "batch.json")
        assert [p.external_id for p in items[:2]] == [None, "a"]
        assert [str(e) for e in items[2:]] == ["line 4: not valid JSON: parse error: unallowed token at this point in JSON text"]

    @pytest.mark.parametrize(
        ("data", "message"),
        [
            ("[" + json.dumps(ok()), "line 1: not valid JSON: parse error: premature EOF"),
            ("[" + json.dumps(ok()) + "] x", "line 1: not valid JSON: parse error: trailing garbage"),
            ('[{"prompt": NaN}]', "line 1: not valid JSON: lexical error: invalid char in json text."),
        ],
    )
    def test_broken_arrays(self, data: str, message: str) -> None:
        assert errors(data, "batch.json")[-1] == message

    def test_a_json_file_must_hold_an_array(self) -> None:
        assert errors('"prompts"', "batch.json") == ['a .json file must hold a JSON array of prompt objects, starting with "["']


class TestCsv:
    def test_gaps_models_without_responses_and_extra_cells(self) -> None:
        data = (
            "id,prompt,response_1,response_2,response_3,model_1,model_2,model_3\n"
            "a,q,x,,z,,,\n"
            "b,q,x,y,,,,m3\n"
            "c,q,x,y,,,,,surprise\n"
            "d,q,x,y,,,,,\n"
        )
        assert errors(data, "batch.csv") == [
            'row 2, field "response_2": is empty but response_3 is filled; fill responses from left to right without gaps',
            'row 3, field "model_3": is set but response_3 is empty',
            "row 4: has 9 cells but the header has 8 columns",
        ]

    def test_cell_rules(self) -> None:
        data = (
            'id,prompt,response_1,response_2,metadata\na, ,x,y,\na,q,x\x00,y,[1]\nb,q,x,,{bad\nc,q,x,y,"{""k"": ""\\u0000""}"\n'
        )
        assert errors(data, "batch.csv", lo=2, hi=2) == [
            'row 2, field "prompt": must not be empty',
            'row 3, field "id": duplicate id "a", first seen on row 2',
            'row 3, field "response_1": contains a NUL character (\\x00) at position 2; remove it',
            'row 3, field "metadata": must be an object, got an array',
            "row 4: expected exactly 2 responses, got 1",
            'row 4, field "metadata": not valid JSON: Expecting property name enclosed in double quotes at position 2',
            'row 5, field "metadata.k": contains a NUL character (\\x00) at position 1; remove it',
        ]

    def test_header_problems(self) -> None:
        data = "ID,Prompt,reponse_1,response_3,model_4,prompt\nq,a,b,c,d,e\n"
        assert errors(data, "batch.csv") == [
            'row 1, field "reponse_1": unknown column; allowed: id, prompt, response_1 … response_N, '
            'model_1 … model_N, metadata (did you mean "response_1"?)',
            'row 1, field "prompt": duplicate column (columns 2 and 6)',
            'row 1, field "response_1": column is missing; number the response columns 1, 2, 3, … without gaps',
            'row 1, field "response_2": column is missing; number the response columns 1, 2, 3, … without gaps',
            'row 1, field "model_4": has no matching response_4 column',
        ]
        assert errors("text,response_1\n", "batch.csv", lo=2, hi=2) == [
            'row 1, field "text": unknown column; allowed: id, prompt, response_1 … response_N, model_1 … model_N, metadata',
            'row 1, field "prompt": column is missing',
            "row 1: needs at least 2 response columns (response_1 … response_2), found 1",
        ]

    def test_unnamed_columns_must_stay_empty(self) -> None:
        data = "prompt,response_1,response_2,,\nq,a,b,,\nq,a,b,,oops\n"
        assert errors(data, "batch.csv") == ["row 3: column 5 has a value but no header"]

    def test_broken_quoting_stops_with_row_and_line(self) -> None:
        data = 'prompt,response_1,response_2\n"a\nb",x,y\n"q"x,a,b\nq,a,b\n'
        assert errors(data, "batch.csv") == ["row 3 (line 4): malformed CSV: ',' expected after '\"'"]
        assert errors('prompt,response_1,response_2\nq,"a,b\n', "batch.csv") == ["row 2: malformed CSV: unexpected end of data"]


class TestErrorCollector:
    def test_caps_errors_but_counts_them_all(self) -> None:
        collector = ErrorCollector(max_errors=50)
        chunks = list(
            collector.chunks(
                parse_batch(
                    io.BytesIO(jsonl(ok()).encode() + b"nope\n" * 120),
                    filename="a.jsonl",
                    min_responses=2,
                    max_responses=9,
                )
            )
        )
        assert chunks == [] and not collector.ok and collector.truncated
        assert (len(collector.errors), collector.total_errors, collector.prompt_count) == (50, 120, 1)
        messages = collector.messages()
        assert messages[0] == "line 2: not valid JSON: Expecting value at position 1"
        assert messages[-1] == "… and 70 more errors; first 50 shown"

    def test_yields_chunks_while_clean_and_none_after_an_error(self) -> None:
        data = jsonl(*(ok(id=i) for i in range(7))) + "oops\n" + jsonl(*(ok(id=i) for i in range(10, 15)))
        collector = ErrorCollector()
        chunks = list(
            collector.chunks(parse_batch(io.BytesIO(data.encode()), filename="a.jsonl", min_responses=2, max_responses=9), size=3)
        )
        assert [[p.external_id for p in chunk] for chunk in chunks] == [["0", "1", "2"], ["3", "4", "5"]]
        assert collector.messages() == ["line 8: not valid JSON: Expecting value at position 1"]
        assert (collector.total_errors, collector.prompt_count, collector.truncated) == (1, 12, False)

    def test_clean_file_yields_everything(self) -> None:
        collector = ErrorCollector()
        data = jsonl(*(ok(id=i) for i in range(5))).encode()
        chunks = list(
            collector.chunks(parse_batch(io.BytesIO(data), filename="a.jsonl", min_responses=2, max_responses=2), size=2)
        )
        assert [len(chunk) for chunk in chunks] == [2, 2, 1] and collector.ok and collector.messages() == []


class LazyStream(io.RawIOBase):
    """A raw stream over generated lines that records how much of it was read."""

    def __init__(self, lines: Iterator[bytes]) -> None:
        self._lines = lines
        self._pending = b""
        self.bytes_read = 0
        self.exhausted = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray) -> int:
        while not self._pending:
            if (line := next(self._lines, None)) is None:
                self.exhausted = True
                return 0
            self._pending = line
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        self.bytes_read += n
        return n


def _lines(kind: str, count: int) -> Iterator[bytes]:
    if kind == "csv":
        yield b"id,prompt,response_1,response_2\n"
        for i in range(count):
            yield f"p{i},prompt {i},yes {i},no {i}\n".encode()
    elif kind == "json":
        yield b"[\n"
        for i in range(count):
            yield (("," if i else "") + json.dumps(ok(id=f"p{i}")) + "\n").encode()
        yield b"]\n"
    else:
        for i in range(count):
            yield (json.dumps(ok(id=f"p{i}")) + "\n").encode()


@pytest.mark.parametrize(("kind", "filename"), [("jsonl", "big.jsonl"), ("json", "big.json"), ("csv", "big.csv")])
def test_parsing_streams(kind: str, filename: str) -> None:
    count = 50_000
    total = sum(len(line) for line in _lines(kind, count))
    stream = LazyStream(_lines(kind, count))
    items = parse_batch(stream, filename=filename, min_responses=2, max_responses=2)
    first = next(items)
    assert isinstance(first, ParsedPrompt) and first.external_id == "p0"
    assert not stream.exhausted and stream.bytes_read < total // 10
    rest = list(items)
    assert stream.exhausted and len(rest) == count - 1 and rest[-1].external_id == f"p{count - 1}"


def test_integers_keep_every_digit_up_to_64_bits():
    """The fast JSON path must not round long integers through a float (orjson would, past 64 bits)."""
    big = 18_446_744_073_709_551_615  # 2**64 - 1, 20 digits
    (parsed,) = prompts(jsonl(ok(metadata={"seed": big, "small": 7, "note": "order 1234567890123456789012"})))
    assert parsed.metadata == {"seed": big, "small": 7, "note": "order 1234567890123456789012"}
    assert type(parsed.metadata["seed"]) is int


def test_an_integer_past_64_bits_is_an_error_naming_the_field():
    (message,) = errors(jsonl(ok(metadata={"seed": 2**70})))
    assert message.startswith("line 1") and "metadata.seed" in message and str(2**70) in message
