"""The one options model of an export: the API's query parameters, the project page's form and the
CLI's flags are all built from it, so they cannot drift apart."""

from collections.abc import Mapping
from typing import Any, Literal, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from app.errors import Unprocessable

ExportFormat = Literal["trl", "trl-chat", "hh", "listwise", "raw", "skips"]
PAIR_FORMATS = ("trl", "trl-chat", "hh")  # one row per (chosen, rejected) pair
FileType = Literal["jsonl", "jsonl.gz", "parquet"]
# What an HTTP download is sent as: a data file by its type, a dataset folder (`folder`) as a zip.
MEDIA_TYPES: dict[str, str] = {
    "jsonl": "application/x-ndjson",
    "jsonl.gz": "application/gzip",
    "parquet": "application/vnd.apache.parquet",
}
FOLDER_MEDIA_TYPE = "application/zip"
ConsensusOption = Literal["none", "majority", "borda", "ranked_pairs", "bradley_terry", "plackett_luce"]


class ExportOptions(BaseModel):
    # Unknown query parameters are an error (422 naming them), not silently ignored.
    model_config = ConfigDict(extra="forbid")

    format: ExportFormat = Field(
        "trl",
        description="Row format: trl, trl-chat, hh (transcripts), listwise (one ranking a row), raw (every annotation), "
        "skips (every skipped task: prompt, annotator, reason, time)",
    )
    file_type: FileType = Field("jsonl", description="Data file type")
    folder: bool = Field(False, description="A dataset folder (data per split, README.md card, manifest.json); a zip over HTTP")
    labels: Literal["annotators", "reference"] = Field(
        "annotators",
        description="annotators = the human labels; reference = the reference label of imported preference "
        "data or an AI judge, one a prompt, from one source (annotator columns null, a reference_source column)",
    )
    source: str | None = Field(
        None,
        max_length=200,
        description="labels=reference: the reference source to export (an AI judge, an imported dataset); "
        "may be left out when the project has one",
    )
    template: Literal["auto", "raw", "hh"] = Field(
        "auto",
        description="String prompts: hh = '\\n\\nHuman: …\\n\\nAssistant:' with completions starting with a space, "
        "so prompt + chosen reads as one transcript; raw = text as stored; auto = hh for trl, raw otherwise",
    )
    pairs: Literal["all", "best_vs_rest", "adjacent"] = Field("all", description="Pairs a ranking yields")
    consensus: ConsensusOption = Field(
        "none", description="none = one pair per annotator; otherwise one consensus ranking per prompt by this method"
    )
    margin: Literal["none", "llama2_small", "llama2_large", "rank_distance"] = Field(
        "none", description="Float margin column: Llama 2 tables from the pairwise strength, or the tier distance"
    )
    ties: Literal["drop", "keep"] = Field(
        "drop", description="keep: two tied responses become two rows with tie=true, one in each order (no direction)"
    )
    min_agreement: float | None = Field(None, ge=0, le=1, description="Drop prompts whose agreement (tie_half) is below this")
    min_annotators: int = Field(1, ge=1, le=1000, description="Drop prompts with fewer labelling annotators")
    exclude_flagged: bool = Field(False, description="Leave out flagged labels")
    exclude_none_acceptable: bool = Field(False, description="Leave out labels marked 'none acceptable' / 'both bad'")
    exclude_gold: bool = Field(False, description="Leave out gold prompts")
    dedupe: bool = Field(False, description="Drop exact duplicate rows (same prompt, chosen, rejected text)")
    test_fraction: float = Field(
        0.0, ge=0, lt=1, description="Share of prompts (or annotators, with split_by=annotator) in the test split (seeded hash)"
    )
    split_by: Literal["prompt", "annotator"] = Field(
        "prompt",
        description="prompt: no prompt in both splits; annotator: all of an annotator's rows in one split (held-out "
        "annotators), a prompt may then be in both",
    )
    seed: int = Field(0, ge=0, le=2**31, description="Seed of the train/test split")

    @field_validator("min_agreement", "source", mode="before")
    @classmethod
    def _blank_is_none(cls, value):  # an empty form field means "no threshold" / "the only source"
        return None if value == "" else value

    @model_validator(mode="after")
    def _consistent(self) -> "ExportOptions":
        if self.margin != "none" and self.format not in PAIR_FORMATS:
            raise ValueError(f"margin: only the pair formats {', '.join(PAIR_FORMATS)} have a margin column")
        if self.pairs != "all" and self.format not in PAIR_FORMATS:
            raise ValueError(f"pairs: only the pair formats {', '.join(PAIR_FORMATS)} are built from pairs")
        if self.dedupe and self.format not in PAIR_FORMATS:
            raise ValueError(f"dedupe: only the pair formats {', '.join(PAIR_FORMATS)} can hold duplicate pairs")
        if self.consensus != "none" and self.format == "raw":
            raise ValueError("consensus: the raw format is one row per annotation; use listwise or a pair format")
        if self.split_by == "annotator":
            # Held-out annotators need rows that belong to one annotator.
            if self.consensus != "none":
                raise ValueError("split_by: annotator needs one row per annotator's label; a consensus row merges annotators")
            if self.labels == "reference":
                raise ValueError("split_by: annotator needs annotators' labels; reference labels have no annotator")
        if self.format == "skips":
            # Skips are not labels: the label filters would silently do nothing.
            label_options = {
                "consensus": self.consensus != "none",
                "labels": self.labels != "annotators",
                "min_agreement": self.min_agreement is not None,
                "min_annotators": self.min_annotators > 1,
                "exclude_flagged": self.exclude_flagged,
                "exclude_none_acceptable": self.exclude_none_acceptable,
                "split_by": self.split_by != "prompt",  # skips follow their prompt's split
            }
            if given := [name for name, is_set in label_options.items() if is_set]:
                raise ValueError(f"{', '.join(given)}: the skips format is one row per skipped task; these filter labels")
        if self.source is not None and self.labels != "reference":
            raise ValueError("source: only labels=reference exports a reference source")
        if self.labels == "reference":
            # One reference a prompt: nothing to merge, count or measure agreement on, and no annotation to audit.
            if self.format == "raw":
                raise ValueError(
                    "labels: the raw format is one row per annotation; reference labels are not annotations, "
                    "use trl, trl-chat, hh or listwise"
                )
            if self.consensus != "none":
                raise ValueError("consensus: labels=reference has one label a prompt, there is nothing to merge")
            if self.min_agreement is not None or self.min_annotators > 1:
                raise ValueError("min_agreement/min_annotators: labels=reference has one label a prompt and no annotators")
        return self

    @property
    def prompt_template(self) -> str:
        """The template in effect: auto is hh for trl (TRL joins prompt + chosen), the text as stored otherwise."""
        if self.template == "auto":
            return "hh" if self.format == "trl" else "raw"
        return self.template

    @property
    def is_pairs(self) -> bool:
        return self.format in PAIR_FORMATS

    @property
    def splits(self) -> tuple[str, ...]:
        return ("train", "test") if self.test_fraction > 0 else ("train",)


# The project page preselects a dataset folder with a test split that TRL's trainers take as it is;
# the API's defaults are a TRL JSONL stream (the same template: auto, i.e. hh for trl).
FORM_DEFAULTS = {"folder": True, "file_type": "parquet", "test_fraction": 0.1}


# Filters in the order the export applies them (app.export.rows.RowBuilder.keep, then dedupe on the rows), each with
# its value that filters nothing: the preview turns them on one at a time to count what each removes.
FILTERS: dict[str, Any] = {
    "exclude_gold": False,
    "exclude_flagged": False,
    "exclude_none_acceptable": False,
    "min_annotators": 1,
    "min_agreement": None,
    "dedupe": False,
}


def form_fields(unavailable: Mapping[str, Mapping[str, str]] | None = None, sources: list[str] | None = None) -> list[dict]:
    """The fields as the project page's form renders them (choices, preselected value, help). `unavailable`:
    field -> choice -> why it does not apply to this project; such choices are not offered, and the form says why.
    `sources`: the project's reference sources, offered as the choices of `source` (left out without any)."""
    unavailable = unavailable or {}
    fields = []
    for name, info in ExportOptions.model_fields.items():
        if name == "source":
            if sources:  # blank: the only source (a project with several must choose)
                field: dict[str, Any] = {"name": name, "kind": "choice", "choices": ["", *sources], "default": ""}
                fields.append(field | {"help": info.description, "not_offered": []})
            continue
        choices = getattr(info.annotation, "__args__", None)
        kind = "bool" if info.annotation is bool else "choice" if get_origin(info.annotation) is Literal else "number"
        hidden = unavailable.get(name, {})
        fields.append(
            {
                "name": name,
                "kind": kind,
                "choices": [c for c in choices if c not in hidden] if kind == "choice" and choices else None,
                "default": FORM_DEFAULTS.get(name, info.default),
                "help": info.description,
                "not_offered": [f"{choice}: {why}" for choice, why in hidden.items()],
            }
        )
    return fields


def field_errors(exc: ValidationError | Unprocessable) -> dict[str, str]:
    """The options' errors by field, in words, for a form that shows each next to its field. A rule across fields
    names its field(s) first ("margin: ...", "min_agreement/min_annotators: ..."); one naming none is under "form"."""
    messages = (
        [(e["loc"][0] if e["loc"] else None, e["msg"].removeprefix("Value error, ")) for e in exc.errors()]
        if isinstance(exc, ValidationError)
        else [(None, exc.message)]
    )
    errors: dict[str, str] = {}
    for field, message in messages:
        if field is None:
            head, sep, rest = message.partition(": ")
            names = head.split("/") if sep else []
            if names and all(n in ExportOptions.model_fields for n in names):
                for name in names:
                    errors.setdefault(name, rest)
                continue
        errors.setdefault(str(field or "form"), message)
    return errors


def parse_form(params: Mapping[str, str]) -> ExportOptions:
    """The options from a form's fields (query parameters), or Unprocessable whose details are field_errors."""
    try:
        return ExportOptions.model_validate(dict(params))
    except ValidationError as exc:
        errors = field_errors(exc)
        raise Unprocessable("; ".join(f"{k}: {v}" for k, v in errors.items()), details=errors) from None
