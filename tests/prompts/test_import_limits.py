"""Upload limits in the parser (ImportLimits, from the MAX_* settings): nesting depth in every format, the length
of prompts, responses, model names and metadata, a Parquet file's size once decompressed; and Parquet files
Python can't turn into records (invalid UTF-8, a struct repeating a field name). Each is an error naming the
line and field; the end-to-end 422s (nothing stored): tests/security/test_bad_input.py."""

import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from app.config import Settings
from app.prompts.upload import ImportLimits, ParsedPrompt, ParseError, parse_batch

LIMITS = ImportLimits(
    prompt_chars=50, response_chars=40, model_name_chars=10, metadata_bytes=100, metadata_depth=4, parquet_bytes=50_000
)


def parse(data: bytes, filename: str, limits: ImportLimits = LIMITS) -> list:
    return list(parse_batch(io.BytesIO(data), filename=filename, min_responses=2, max_responses=2, limits=limits))


def errors(data: bytes, filename: str, limits: ImportLimits = LIMITS) -> list[str]:
    return [str(item) for item in parse(data, filename, limits) if isinstance(item, ParseError)]


def nested(depth: int) -> dict:
    """An object `depth` levels deep: {"a": {"a": … {"b": 1}}}."""
    value: dict = {"b": 1}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def deep_json(depth: int) -> str:
    """The same, as text, for depths past what json.dumps can build."""
    return '{"a": ' * (depth - 1) + "{}" + "}" * (depth - 1)


def record(metadata: str = "null", **extra: object) -> str:
    fields = {"prompt": "Say hi", "responses": ["hi", "hello"], **extra}
    return json.dumps(fields)[:-1] + f', "metadata": {metadata}}}'


def parquet(table: pa.Table, **options) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(table, buffer, **options)
    return buffer.getvalue()


def test_the_limits_come_from_the_settings():
    limits = ImportLimits.from_settings(Settings(MAX_METADATA_DEPTH=7, MAX_METADATA_KB=2, MAX_PARQUET_UNCOMPRESSED_MB=1))
    assert (limits.metadata_depth, limits.metadata_bytes, limits.parquet_bytes) == (7, 2048, 1024 * 1024)
    defaults = ImportLimits.from_settings(Settings())
    assert (defaults.metadata_depth, defaults.model_name_chars) == (32, 200)


class TestDepth:
    def test_metadata_at_the_limit_is_fine_one_deeper_is_an_error_naming_line_and_field(self):
        data = (record(json.dumps(nested(4))) + "\n" + record(json.dumps(nested(5))) + "\n").encode()
        assert errors(data, "a.jsonl") == ['line 2, field "metadata": nested deeper than 4 (MAX_METADATA_DEPTH)']

    @pytest.mark.parametrize("depth", [255, 1_022, 1_100, 100_000])
    def test_jsonl_any_depth(self, depth):
        """255-1,022 levels broke the database write (500); past orjson's 1,024, the error did not name the field."""
        data = (record(deep_json(depth)) + "\n").encode()
        assert errors(data, "a.jsonl", ImportLimits.from_settings(Settings())) == [
            'line 1, field "metadata": nested deeper than 32 (MAX_METADATA_DEPTH)'
        ]

    @pytest.mark.parametrize("depth", [300, 200_000])
    def test_json_array_stops_at_the_limit_without_building_the_item(self, depth):
        item = '{"prompt": "p", "responses": [{"text": "x", "metadata": ' + deep_json(depth) + '}, "y"]}'
        data = f"[{record()},\n{item}, {record()}]".encode()
        assert errors(data, "a.json") == [
            'item 2 (line 2), field "responses[0].metadata": nested deeper than 4 (MAX_METADATA_DEPTH)'
        ]

    @pytest.mark.parametrize("depth", [5, 15_000])  # 15,000 levels: 120,000 characters, within a CSV cell's limit
    def test_csv_metadata(self, depth):
        cell = '"' + deep_json(depth).replace('"', '""') + '"'
        data = f"prompt,response_1,response_2,metadata\np,a,b,{cell}\n".encode()
        assert errors(data, "a.csv") == ['row 2, field "metadata": nested deeper than 4 (MAX_METADATA_DEPTH)']

    def test_parquet_nested_structs_are_refused_from_the_schema(self):
        table = pa.table({"prompt": ["p"], "responses": [["x", "y"]], "metadata": [{"b": nested(6)}]})
        assert errors(parquet(table), "a.parquet") == ['field "metadata": nested deeper than 4 (MAX_METADATA_DEPTH)']

    def test_parquet_nested_lists(self):
        table = pa.table({"prompt": ["p"], "responses": [["x", "y"]], "tags": [[[[[["deep"]]]]]]})
        assert errors(parquet(table), "a.parquet") == ['field "tags": nested deeper than 4 (MAX_METADATA_DEPTH)']


class TestLengths:
    def test_each_field_over_its_limit_is_named(self):
        fields = {
            "prompt": "p" * 51,
            "responses": [{"text": "r" * 41, "model": "m" * 11}, {"text": "ok", "metadata": {"k": "v" * 100}}],
            "metadata": {"k": "v" * 100},
        }
        assert errors((json.dumps(fields) + "\n").encode(), "a.jsonl") == [
            'line 1, field "prompt": is 51 characters long; the limit is 50 (MAX_PROMPT_CHARS)',
            'line 1, field "metadata": is 108 bytes as JSON; the limit is 100 (MAX_METADATA_KB)',
            'line 1, field "responses[0].text": is 41 characters long; the limit is 40 (MAX_RESPONSE_CHARS)',
            'line 1, field "responses[0].model": is 11 characters long; the limit is 10 (MAX_MODEL_NAME_CHARS)',
            'line 1, field "responses[1].metadata": is 108 bytes as JSON; the limit is 100 (MAX_METADATA_KB)',
        ]

    def test_at_the_limits_is_fine(self):
        fields = {"prompt": "p" * 50, "responses": [{"text": "r" * 40, "model": "m" * 10}, "ok"]}
        [prompt] = parse((json.dumps(fields) + "\n").encode(), "a.jsonl")
        assert isinstance(prompt, ParsedPrompt) and prompt.responses[0].model == "m" * 10

    def test_a_chat_counts_all_its_messages(self):
        chat = [
            {"role": "user", "content": "u" * 30},
            {"role": "assistant", "content": "a"},
            {"role": "user", "content": "u" * 20},
        ]
        data = (json.dumps({"prompt": chat, "responses": ["x", "y"]}) + "\n").encode()
        assert errors(data, "a.jsonl") == ['line 1, field "prompt": is 51 characters long; the limit is 50 (MAX_PROMPT_CHARS)']

    def test_csv_and_preference_records_too(self):
        assert errors(f"prompt,response_1,response_2,model_1\np,{'r' * 41},b,m\n".encode(), "a.csv") == [
            'row 2, field "responses[0].text": is 41 characters long; the limit is 40 (MAX_RESPONSE_CHARS)'
        ]
        pair = {"prompt": "p" * 60, "chosen": "good", "rejected": "bad"}
        assert errors((json.dumps(pair) + "\n").encode(), "a.jsonl") == [
            'line 1, field "prompt": is 60 characters long; the limit is 50 (MAX_PROMPT_CHARS)'
        ]

    def test_model_names_default_to_the_column_width(self):
        fields = {"prompt": "p", "responses": [{"text": "x", "model": "m" * 201}, "y"]}
        data = (json.dumps(fields) + "\n").encode()
        assert errors(data, "a.jsonl", ImportLimits.from_settings(Settings())) == [
            'line 1, field "responses[0].model": is 201 characters long; the limit is 200 (MAX_MODEL_NAME_CHARS)'
        ]


class TestParquet:
    def test_a_small_file_that_decompresses_past_the_limit(self):
        """A few KB of zstd holding megabytes of prompt: refused from the row groups' declared sizes."""
        table = pa.table({"prompt": ["p" * 1_000_000], "responses": [["x", "y"]]})
        data = parquet(table, compression="zstd")
        assert len(data) < 10_000
        limits = ImportLimits.from_settings(Settings(MAX_PARQUET_UNCOMPRESSED_MB=0.5))
        assert errors(data, "a.parquet", limits) == [
            "the file holds more than 524,288 bytes of data once decompressed (MAX_PARQUET_UNCOMPRESSED_MB)"
        ]

    def test_invalid_utf8_names_row_and_column(self):
        prompts = pa.array([b"fine", b"caf\xe9"], pa.binary()).view(pa.string())  # written as is, never validated
        table = pa.table({"prompt": prompts, "responses": [["x", "y"], ["x", "y"]]})
        assert errors(parquet(table), "a.parquet") == ['row 2, field "prompt": holds text that is not valid UTF-8']

    def test_a_struct_repeating_a_field_name(self):
        metadata = pa.StructArray.from_arrays([pa.array([1]), pa.array([2])], fields=[pa.field("a", pa.int64())] * 2)
        table = pa.table({"prompt": ["p"], "responses": [["x", "y"]], "metadata": metadata})
        assert errors(parquet(table), "a.parquet") == ['field "metadata": repeats the field name "a"']
