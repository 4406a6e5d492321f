"""The dataset card (README.md) of a dataset folder: the YAML header Hugging Face `datasets` reads
(configs with data files per split, features), and the numbers a reader needs in the body."""

from typing import Any

import orjson

from app.agreement import formatting
from app.agreement.schemas import AgreementReport
from app.export.formats import Spec, hf_feature


def to_yaml(value: Any, indent: int = 0) -> str:
    """Block YAML for nested dicts/lists of plain scalars; strings double-quoted (JSON escapes are YAML's)."""
    pad = " " * indent
    if isinstance(value, dict):
        lines = []
        for key, item in value.items():
            if isinstance(item, (dict, list)) and item:
                lines.append(f"{pad}{key}:\n{to_yaml(item, indent + 2)}")
            else:
                lines.append(f"{pad}{key}: {_scalar(item)}")
        return "\n".join(lines)
    if isinstance(value, list):
        lines = []
        for item in value:
            if isinstance(item, (dict, list)) and item:
                body = to_yaml(item, indent + 2)
                lines.append(f"{pad}- {body[indent + 2 :]}")
            else:
                lines.append(f"{pad}- {_scalar(item)}")
        return "\n".join(lines)
    return pad + _scalar(value)


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (dict, list)):
        return "{}" if isinstance(value, dict) else "[]"
    return orjson.dumps(str(value)).decode()


def header(*, data_files: dict[str, str], cols: list[tuple[str, Spec]]) -> dict[str, Any]:
    return {
        "configs": [
            {"config_name": "default", "data_files": [{"split": split, "path": path} for split, path in data_files.items()]}
        ],
        "dataset_info": {"features": [hf_feature(name, spec) for name, spec in cols]},
        "tags": ["preference", "rlhf", "preflab"],
    }


def render(*, manifest: dict[str, Any], cols: list[tuple[str, Spec]], data_files: dict[str, str], report: AgreementReport) -> str:
    """The whole README.md."""
    project, counts, options = manifest["project"], manifest["counts"], manifest["options"]
    summary = report.summary
    lines = [
        "---",
        to_yaml(header(data_files=data_files, cols=cols)),
        "---",
        "",
        f"# {project['name']}: {options['format']} preference data",
        "",
        f"Exported from Preflab on {manifest['created_at']} ({project['kind']} project, id {project['id']}).",
        "",
        "```python",
        "from datasets import load_dataset",
        'dataset = load_dataset("path/to/this/folder")',
        "```",
        "",
        "## Numbers",
        "",
        "| split | rows | prompts |",
        "|---|---|---|",
        *[f"| {s} | {counts['rows'][s]} | {counts['prompts'][s]} |" for s in counts["rows"]],
        "",
        f"- annotators whose labels are in the rows: {counts['annotators']}",
        *(
            [
                "- split by annotator (held-out annotators): all of an annotator's rows are in one split; a prompt can be "
                "in both splits, labelled by different annotators"
            ]
            if options.get("split_by") == "annotator"
            else []
        ),
        *(
            [
                "- labels: the reference labels of the imported preference data (one a prompt, from one source: the "
                "`reference_source` column), not human labels"
            ]
            if options.get("labels") == "reference"
            else []
        ),
        "- left out by the filters: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in counts["dropped"].items()),
        *(
            [
                "- `tie=true` rows: two tied responses, written once in each order (each as `chosen` once), so they "
                "teach no direction; filter on `tie` to drop or weigh them"
            ]
            if options.get("ties") == "keep" and "tie" in dict(cols)
            else []
        ),
        "",
        "## Agreement (all labels of the project, before the export's filters)",
        "",
        f"{summary.labels} labels by {summary.annotators} annotators on {summary.prompts} prompts "
        f"({summary.prompts_with_2plus} with 2+ annotators). Labels with a ranking or choice submitted in the order "
        f"shown, untouched: {formatting.share(summary.untouched_labels, summary.ranked_labels)}.",
        "",
        "| metric | value | note |",
        "|---|---|---|",
        *[f"| {name} | {formatting.metric(m)} | {m.reason or ''} |" for name, m in report.project.items()],
        "",
        *_agreement_notes(report, options),
        "## Export options",
        "",
        "```json",
        orjson.dumps(options, option=orjson.OPT_INDENT_2).decode(),
        "```",
        "",
        "## Columns",
        "",
        "| column | type |",
        "|---|---|",
        *[f"| `{name}` | {_describe(spec)} |" for name, spec in cols],
        "",
        f"`skips.jsonl` holds every task an annotator skipped ({counts.get('skips', 0)}), one a line: the prompt "
        "(`prompt_id` as uploaded, `prompt_db_id` in Preflab), the annotator, their reason and the time. It is not "
        "part of the dataset's splits.",
        "",
        "`manifest.json` lists every file with its sha256, the counts and the options.",
        "",
    ]
    return "\n".join(lines)


def _agreement_notes(report: AgreementReport, options: dict[str, Any]) -> list[str]:
    """What the table alone would hide: W's missing chance correction, and pairs with no majority."""
    notes = []
    if report.kind == "ranking":
        notes.append("Kendall's W is not chance-corrected: random rankings by m annotators give about 1/m, not 0.")
    if report.summary.even_splits:
        note = f"{report.summary.even_splits} response pairs split evenly between annotators (as many votes each way)"
        if options.get("consensus", "none") != "none":
            note += f": no majority orders them in the `{options['consensus']}` consensus (a two-response prompt's is a tie"
            note += ", which gives no pair rows while `ties` is `drop`)" if options.get("ties") == "drop" else ")"
        notes.append(note + ".")
    return [*[f"- {n}" for n in notes], ""] if notes else []


def _describe(spec: Spec) -> str:
    if isinstance(spec, str):
        return spec
    kind, inner = spec
    if kind == "list":
        return f"list of {_describe(inner)}"
    return "{" + ", ".join(f"{n}: {_describe(t)}" for n, t in inner) + "}"
