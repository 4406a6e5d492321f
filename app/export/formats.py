"""The columns of each export format, as one spec that gives the Arrow schema (Parquet), the Hugging Face
`features` of the dataset card, and the keys of every row, so a file's schema never varies by row."""

from typing import TYPE_CHECKING, Any

from app.export.options import ExportOptions

if TYPE_CHECKING:  # pyarrow (+40 MiB) is loaded by Parquet exports only: a JSONL export never pays for it
    import pyarrow as pa

# A column type: a dtype name, ("list", type) or ("struct", [(name, type), ...]).
Spec = Any
S, I, F, B = "string", "int64", "float64", "bool"
MESSAGES: Spec = ("list", ("struct", [("role", S), ("content", S)]))
TIERS: Spec = ("list", ("list", I))

PAIR_META = [
    ("tie", B),
    ("prompt_id", S),
    ("chosen_response_id", I),
    ("rejected_response_id", I),
    ("chosen_model", S),
    ("rejected_model", S),
]
PER_ANNOTATOR = [("annotator_id", I), ("annotation_id", I)]
CONSENSUS = [
    ("consensus", S),
    ("n_annotators", I),
    ("votes_chosen", I),
    ("votes_rejected", I),
    ("votes_tie", I),
    ("agreement", F),
]
RAW = [
    ("annotation_id", I),
    ("prompt_id", S),
    ("prompt", S),
    ("messages", MESSAGES),
    ("responses", ("list", S)),
    ("response_ids", ("list", I)),
    ("models", ("list", S)),
    ("kind", S),
    ("annotator_id", I),
    ("annotator_email", S),
    ("ranking", TIERS),
    ("strength", I),
    ("strength_label", S),
    ("none_acceptable", B),
    ("flag", S),
    ("flag_reason", S),
    ("rationale", S),
    ("ratings", ("list", ("struct", [("criterion", S), ("response_id", I), ("value", F)]))),
    ("shown_order", ("list", I)),
    ("order_changed", B),
    ("time_spent_ms", I),
    ("leased_at", S),
    ("created_at", S),
    ("revision", I),
    ("revised_at", S),
    ("is_gold", B),
]

SKIPS = [
    ("prompt_id", S),
    ("prompt_db_id", I),
    ("annotator_id", I),
    ("annotator_email", S),
    ("reason", S),
    ("skipped_at", S),
    ("is_gold", B),
]


def columns(options: ExportOptions, *, split_column: bool) -> list[tuple[str, Spec]]:
    """The ordered columns of a file written with these options."""
    chat = options.format == "trl-chat"
    if options.format == "raw":
        cols = list(RAW)
    elif options.format == "skips":
        cols = list(SKIPS)
    elif options.format == "listwise":
        cols = [
            ("prompt", S),
            ("responses", ("list", S)),
            ("response_ids", ("list", I)),
            ("models", ("list", S)),
            ("ranking", TIERS),
            ("ranks", ("list", I)),
            ("prompt_id", S),
        ]
        cols += [("consensus", S), ("n_annotators", I), ("agreement", F)] if options.consensus != "none" else _per_label(options)
    else:
        text = MESSAGES if chat else S
        cols = [] if options.format == "hh" else [("prompt", text)]
        cols += [("chosen", text), ("rejected", text)]
        if options.margin != "none":
            cols.append(("margin", F))
        cols += PAIR_META + (CONSENSUS if options.consensus != "none" else _per_label(options))
    if split_column:
        cols.append(("split", S))
    return cols


def _per_label(options: ExportOptions) -> list[tuple[str, Spec]]:
    # Reference labels keep the annotator columns (null), so code reading either export sees the same columns.
    return [*PER_ANNOTATOR, ("reference_source", S)] if options.labels == "reference" else PER_ANNOTATOR


def arrow_type(spec: Spec) -> "pa.DataType":
    import pyarrow as pa

    if isinstance(spec, str):
        return {S: pa.string(), I: pa.int64(), F: pa.float64(), B: pa.bool_()}[spec]
    kind, inner = spec
    if kind == "list":
        return pa.list_(arrow_type(inner))
    return pa.struct([(name, arrow_type(t)) for name, t in inner])


def arrow_schema(cols: list[tuple[str, Spec]]) -> "pa.Schema":
    import pyarrow as pa

    return pa.schema([(name, arrow_type(t)) for name, t in cols])


def hf_feature(name: str | None, spec: Spec) -> dict:
    """One entry of the card's `dataset_info.features`, in the YAML shape `datasets` reads."""
    entry: dict[str, Any] = {} if name is None else {"name": name}
    if isinstance(spec, str):
        entry["dtype"] = spec
        return entry
    kind, inner = spec
    if kind == "struct":
        entry["struct"] = [hf_feature(n, t) for n, t in inner]
    elif isinstance(inner, str):
        entry["list"] = inner
    elif inner[0] == "struct":
        entry["list"] = [hf_feature(n, t) for n, t in inner[1]]
    else:
        entry["list"] = hf_feature(None, inner)
    return entry
