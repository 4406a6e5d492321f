"""Export v2: every format loads with Hugging Face `datasets` with the columns and types TRL documents,
and the rows say what the labels say (ties, strength, consensus votes, filters, split)."""

import gzip
import hashlib
import itertools
import json
from pathlib import Path

import pytest
from datasets import DatasetDict, Features, List, Value, load_dataset
from datasets.exceptions import DatasetGenerationError
from sqlalchemy import select

from app.export import service
from app.export.formats import arrow_schema, columns
from app.export.options import ExportOptions
from app.export.pairs import select_pairs
from app.export.rows import split_of
from app.models import Annotation, Project, Prompt

STRENGTHS = ["significantly better", "better", "slightly better", "negligibly better / unsure"]
MESSAGE = {"role": Value("string"), "content": Value("string")}


def export(db, project, tmp_path: Path, **options) -> tuple[Path, dict]:
    opts = ExportOptions(**options)
    db.rollback()  # a fresh snapshot that sees what the test wrote
    project = db.get(Project, project.id)
    service.check(project=project, options=opts)
    if opts.folder:
        return tmp_path / "folder", service.write_folder(session=db, project=project, options=opts, directory=tmp_path / "folder")
    path = tmp_path / f"out.{opts.file_type}"
    return path, service.write_file(session=db, project=project, options=opts, path=path)


def load(path: Path):
    kind = "parquet" if path.suffix == ".parquet" else "json"
    return load_dataset(kind, data_files=str(path), split="train")


@pytest.fixture
def ranking(seed):
    """3 prompts x 4 responses (one a chat, one gold), 3 annotators, ties allowed."""
    rows = [
        {
            "id": "q0",
            "prompt": "How do I reverse a list?",
            "responses": [{"text": "l[::-1]", "model": "m1"}, "reversed(l)", "sort it", "no idea"],
        },
        {
            "id": "q1",
            "prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi!"}],
            "responses": ["Hello!", "Hi there.", "Go away.", "..."],
        },
        {"id": "q2", "prompt": "2+2?", "responses": ["4", "5", "four", "22"]},
    ]
    project = seed.project(rows, allow_ties=True, overlap=3)
    a, b, c = seed.annotators(3)
    seed.label(project, "q0", a, [[0], [1], [2], [3]])
    seed.label(project, "q0", b, [[0], [1, 2], [3]])  # a tie
    seed.label(project, "q0", c, [[1], [0], [3], [2]], flag="harmful", flag_reason="test")
    seed.label(project, "q1", a, [[0, 1], [2], [3]])
    seed.label(project, "q1", b, [[1], [0], [2], [3]], rationale="friendlier", ratings={"helpful": {}})
    seed.label(project, "q2", a, [[0, 2], [3], [1]])
    seed.label(project, "q2", c, None, none_acceptable=True)
    return project, (a, b, c)


@pytest.fixture
def pairwise(seed):
    """Two prompts, 4-level strength scale (Llama 2), 3 annotators."""
    rows = [{"id": f"p{i}", "prompt": f"question {i}", "responses": [f"good {i}", f"bad {i}"]} for i in range(2)]
    project = seed.project(rows, kind="pairwise", allow_ties=True, strength_scale=STRENGTHS)
    a, b, c = seed.annotators(3)
    seed.label(project, "p0", a, [[0], [1]], strength=0)  # significantly better
    seed.label(project, "p0", b, [[0], [1]], strength=2)  # slightly better
    seed.label(project, "p0", c, [[1], [0]], strength=3)  # the other way, negligibly
    seed.label(project, "p1", a, [[0, 1]])  # a tie
    seed.label(project, "p1", b, [[1], [0]], strength=1)
    return project, (a, b, c)


def reference_pairs(tiers):
    rank = {rid: i for i, tier in enumerate(tiers) for rid in tier}
    return {(x, y) if rank[x] < rank[y] else (y, x) for x, y in itertools.combinations(rank, 2) if rank[x] != rank[y]}


@pytest.mark.parametrize("file_type", ["jsonl", "jsonl.gz", "parquet"])
def test_trl_loads_with_documented_columns(db, ranking, tmp_path, file_type):
    project, _ = ranking
    path, counts = export(db, project, tmp_path, format="trl", file_type=file_type, margin="rank_distance")
    ds = load(path)
    assert ds.column_names == [
        name for name, _ in columns(ExportOptions(format="trl", margin="rank_distance"), split_column=False)
    ]
    for name in ("prompt", "chosen", "rejected", "prompt_id"):
        assert ds.features[name] == Value("string"), name
    assert ds.features["margin"] == Value("float64")
    # q0: 6 + 5 + 6 pairs, q1: 5 + 6, q2: 5 (the none-acceptable label has no ranking)
    assert len(ds) == counts["rows"]["train"] == 33
    assert counts["prompts"] == {"train": 3} and counts["annotators"] == 3
    for row in ds:
        assert row["margin"] >= 1.0 and row["tie"] is False


def test_trl_pairs_match_each_annotators_ranking(db, ranking, tmp_path):
    project, _ = ranking
    path, _ = export(db, project, tmp_path, format="trl")
    db.rollback()
    expected = set()
    for a in db.query(Annotation).filter(Annotation.project_id == project.id, Annotation.ranking.is_not(None)):
        expected |= {(a.id, x, y) for x, y in reference_pairs(a.ranking)}
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert {(r["annotation_id"], r["chosen_response_id"], r["rejected_response_id"]) for r in rows} == expected
    assert len(rows) == len(expected)


def test_hh_template_makes_the_concatenation_a_transcript(db, ranking, tmp_path):
    project, _ = ranking
    path, _ = export(db, project, tmp_path, format="trl", template="hh")
    rows = {(r["prompt_id"], r["chosen"]): r for r in map(json.loads, path.read_text().splitlines())}
    row = rows[("q0", " l[::-1]")]
    assert row["prompt"] + row["chosen"] == "\n\nHuman: How do I reverse a list?\n\nAssistant: l[::-1]"
    chat = next(r for (pid, _), r in rows.items() if pid == "q1")
    assert chat["prompt"] == "\n\nSystem: Be brief.\n\nHuman: Hi!\n\nAssistant:"
    # The hh format is the same transcript with the prompt inside chosen and rejected (implicit prompt).
    (tmp_path / "hh").mkdir()
    hh_path, _ = export(db, project, tmp_path / "hh", format="hh")
    hh = load(hh_path)
    assert "prompt" not in hh.column_names and hh.features["chosen"] == Value("string")
    hh_rows = {(r["annotation_id"], r["chosen_response_id"], r["rejected_response_id"]): r for r in hh}
    for r in rows.values():
        h = hh_rows[(r["annotation_id"], r["chosen_response_id"], r["rejected_response_id"])]
        assert (h["chosen"], h["rejected"]) == (r["prompt"] + r["chosen"], r["prompt"] + r["rejected"])
        assert h["chosen"].startswith("\n\nHuman: ") or h["chosen"].startswith("\n\nSystem: ")


def test_trl_default_is_the_hh_template_and_raw_keeps_the_text(db, ranking, tmp_path):
    """TRL joins prompt + chosen with nothing between: the default trl export is template=hh; raw stays available,
    and the other formats keep the text as stored by default."""
    project, _ = ranking
    for name in ("auto", "hh", "raw", "listwise"):
        (tmp_path / name).mkdir()
    default, _ = export(db, project, tmp_path / "auto", format="trl")
    hh, _ = export(db, project, tmp_path / "hh", format="trl", template="hh")
    raw, _ = export(db, project, tmp_path / "raw", format="trl", template="raw")
    assert default.read_bytes() == hh.read_bytes() != raw.read_bytes()
    row = next(r for r in map(json.loads, default.read_text().splitlines()) if r["prompt_id"] == "q2")
    assert row["prompt"] == "\n\nHuman: 2+2?\n\nAssistant:" and row["chosen"] in {" 4", " four"}
    raw_row = next(r for r in map(json.loads, raw.read_text().splitlines()) if r["prompt_id"] == "q2")
    assert raw_row["prompt"] == "2+2?" and raw_row["chosen"] in {"4", "four"}
    listwise, _ = export(db, project, tmp_path / "listwise", format="listwise")
    first = json.loads(listwise.read_text().splitlines()[0])
    assert first["prompt"] == "How do I reverse a list?" and first["responses"][0] == "l[::-1]"


@pytest.mark.parametrize("file_type", ["jsonl", "parquet"])
def test_trl_chat_is_lists_of_role_content(db, ranking, tmp_path, file_type):
    project, _ = ranking
    path, _ = export(db, project, tmp_path, format="trl-chat", file_type=file_type)
    ds = load(path)
    for name in ("prompt", "chosen", "rejected"):
        assert ds.features[name] == List(MESSAGE), name
    row = next(r for r in ds if r["prompt_id"] == "q1")
    assert row["prompt"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi!"}]
    assert [m["role"] for m in row["chosen"]] == ["assistant"] and [m["role"] for m in row["rejected"]] == ["assistant"]
    plain = next(r for r in ds if r["prompt_id"] == "q0")
    assert plain["prompt"] == [{"role": "user", "content": "How do I reverse a list?"}]


def test_listwise_keeps_ties_one_row_per_ranking(db, ranking, tmp_path):
    project, (_a, b, _) = ranking
    path, _counts = export(db, project, tmp_path, format="listwise", file_type="parquet")
    ds = load(path)
    assert ds.features["ranking"] == List(List(Value("int64"))) and ds.features["responses"] == List(Value("string"))
    assert len(ds) == 6  # every label with a ranking
    row = next(r for r in ds if r["prompt_id"] == "q0" and r["annotator_id"] == b.id)
    assert row["responses"] == ["l[::-1]", "reversed(l)", "sort it", "no idea"]
    assert row["ranking"] == [[0], [1, 2], [3]] and row["ranks"] == [1, 2, 2, 3]
    assert row["models"] == ["m1", None, None, None]


def test_raw_has_everything(db, ranking, tmp_path):
    project, (_a, _b, c) = ranking
    path, _ = export(db, project, tmp_path, format="raw", file_type="parquet")
    ds = load(path)
    assert len(ds) == 7  # every annotation, the none-acceptable one included
    flagged = next(r for r in ds if r["annotator_id"] == c.id and r["prompt_id"] == "q0")
    assert flagged["flag"] == "harmful" and flagged["flag_reason"] == "test" and flagged["annotator_email"] == c.email
    assert flagged["shown_order"] == list(reversed(flagged["response_ids"])) and flagged["time_spent_ms"] == 1234
    assert flagged["created_at"].endswith("+00:00") and flagged["leased_at"] is not None
    none = next(r for r in ds if r["none_acceptable"])
    assert none["ranking"] is None and none["annotator_id"] == c.id
    assert next(r for r in ds if r["rationale"])["rationale"] == "friendlier"
    assert ds.features["ratings"] == List(
        {"criterion": Value("string"), "response_id": Value("int64"), "value": Value("float64")}
    )


def test_filters(db, ranking, tmp_path):
    project, (_a, _b, _c) = ranking
    _, all_rows = export(db, project, tmp_path, format="trl")
    _, no_flags = export(db, project, tmp_path, format="trl", exclude_flagged=True)
    assert all_rows["rows"]["train"] - no_flags["rows"]["train"] == 6  # c's flagged ranking of q0
    _, two = export(db, project, tmp_path, format="trl", min_annotators=2)
    assert two["prompts"] == {"train": 2} and two["dropped"]["below_min_annotators"] == 1  # q2 has one ranking
    _, none_out = export(db, project, tmp_path, format="raw", exclude_none_acceptable=True)
    assert none_out["rows"]["train"] == 6


def test_exclude_gold(db, ranking, tmp_path):
    project, _ = ranking
    db.rollback()
    db.scalar(select(Prompt).where(Prompt.project_id == project.id, Prompt.external_id == "q2")).is_gold = True
    db.commit()
    _, kept = export(db, project, tmp_path, format="trl")
    _, counts = export(db, project, tmp_path, format="trl", exclude_gold=True)
    assert kept["prompts"] == {"train": 3}
    assert counts["prompts"] == {"train": 2} and counts["dropped"]["gold"] == 1


@pytest.mark.parametrize("margin, expected", [("llama2_large", [3.0, 1.0, 0.0, 2.0]), ("llama2_small", [1.0, 1 / 3, 0.0, 2 / 3])])
def test_pairwise_strength_margin_is_llama2_table(db, pairwise, tmp_path, margin, expected):
    project, (a, b, c) = pairwise
    path, _ = export(db, project, tmp_path, format="trl", margin=margin, file_type="parquet", template="raw")
    ds = load(path)
    assert ds.features["margin"] == Value("float64")
    got = {(r["prompt_id"], r["annotator_id"]): (r["chosen"], r["margin"]) for r in ds}
    assert got == {
        ("p0", a.id): ("good 0", pytest.approx(expected[0])),
        ("p0", b.id): ("good 0", pytest.approx(expected[1])),
        ("p0", c.id): ("bad 0", pytest.approx(expected[2])),
        ("p1", b.id): ("bad 1", pytest.approx(expected[3])),
    }  # a's tie on p1 gives no pair


def test_pairwise_ties_kept_as_tie_rows_with_zero_margin(db, pairwise, tmp_path):
    project, (a, _, _) = pairwise
    path, _ = export(db, project, tmp_path, format="trl", margin="llama2_large", ties="keep")
    ties = [r for r in load(path) if r["tie"]]
    assert {r["annotator_id"] for r in ties} == {a.id} and [r["margin"] for r in ties] == [0.0, 0.0]
    # No direction: a's one tie on p1 is two rows, each response once as chosen and once as rejected.
    (x, y) = [(r["chosen_response_id"], r["rejected_response_id"]) for r in ties]
    assert x == y[::-1] and x[0] != x[1]


def test_pairwise_consensus_carries_votes_and_agreement(db, pairwise, tmp_path):
    project, _ = pairwise
    path, _counts = export(db, project, tmp_path, format="trl", consensus="majority", margin="llama2_large", template="raw")
    rows = {r["prompt_id"]: r for r in load(path)}
    p0, p1 = rows["p0"], rows["p1"]
    assert (p0["chosen"], p0["votes_chosen"], p0["votes_rejected"], p0["votes_tie"]) == ("good 0", 2, 1, 0)
    assert p0["agreement"] == pytest.approx(1 / 3) and p0["n_annotators"] == 3
    assert p0["margin"] == pytest.approx(2.0)  # mean of the two supporters' large margins (3 and 1)
    assert (p1["chosen"], p1["votes_chosen"], p1["votes_rejected"], p1["votes_tie"]) == ("bad 1", 1, 0, 1)
    assert p1["agreement"] == pytest.approx(0.5)  # a tie against a preference scores 1/2
    _, strict = export(db, project, tmp_path, format="trl", consensus="majority", min_agreement=0.4)
    assert strict["prompts"] == {"train": 1} and strict["dropped"]["below_min_agreement"] == 1


@pytest.mark.parametrize("method", ["majority", "borda", "ranked_pairs", "bradley_terry", "plackett_luce"])
def test_ranking_consensus_votes(db, ranking, tmp_path, method):
    project, _ = ranking
    path, _ = export(db, project, tmp_path, format="trl", consensus=method, template="raw")
    q0 = [r for r in load(path) if r["prompt_id"] == "q0"]
    ids = {r["chosen"]: r["chosen_response_id"] for r in q0} | {r["rejected"]: r["rejected_response_id"] for r in q0}
    order = ["l[::-1]", "reversed(l)", "sort it", "no idea"]  # the consensus of a, b and c by every method
    assert {(r["chosen"], r["rejected"]) for r in q0} == {(x, y) for i, x in enumerate(order) for y in order[i + 1 :]}
    top = next(r for r in q0 if (r["chosen"], r["rejected"]) == ("l[::-1]", "reversed(l)"))
    assert (top["votes_chosen"], top["votes_rejected"], top["votes_tie"], top["n_annotators"]) == (2, 1, 0, 3)
    assert top["consensus"] == method and 0 < top["agreement"] < 1 and ids


@pytest.mark.parametrize("mode, n", [("all", 6), ("best_vs_rest", 3), ("adjacent", 3)])
def test_pair_modes(db, ranking, tmp_path, mode, n):
    project, (a, _, _) = ranking
    path, _ = export(db, project, tmp_path, format="trl", pairs=mode, margin="rank_distance", template="raw")
    rows = [r for r in load(path) if r["prompt_id"] == "q0" and r["annotator_id"] == a.id]
    assert len(rows) == n
    if mode == "adjacent":
        assert {r["margin"] for r in rows} == {1.0}
    if mode == "best_vs_rest":
        assert {r["chosen"] for r in rows} == {"l[::-1]"} and sorted(r["margin"] for r in rows) == [1.0, 2.0, 3.0]


def test_select_pairs_ties_and_distances():
    tiers = [[5], [1, 2], [7]]
    # A tie is written in both orders (distance 0), so it teaches no direction.
    assert sorted(select_pairs(tiers, "all", True)) == [
        (1, 2, 0),
        (1, 7, 1),
        (2, 1, 0),
        (2, 7, 1),
        (5, 1, 1),
        (5, 2, 1),
        (5, 7, 2),
    ]
    assert sorted(select_pairs(tiers, "best_vs_rest", True)) == [(5, 1, 1), (5, 2, 1), (5, 7, 2)]
    assert sorted(select_pairs([[3, 1], [2]], "best_vs_rest", True)) == [(1, 2, 1), (1, 3, 0), (3, 1, 0), (3, 2, 1)]
    assert sorted(select_pairs([[4, 6, 8]], "adjacent", True)) == sorted(
        (a, b, 0) for a in (4, 6, 8) for b in (4, 6, 8) if a != b
    )  # a 3-way tie: all 6 ordered pairs
    assert sorted(select_pairs(tiers, "adjacent", False)) == [(1, 7, 1), (2, 7, 1), (5, 1, 1), (5, 2, 1)]


def test_dedupe_drops_exact_duplicate_pairs(seed, db, tmp_path):
    rows = [{"id": i, "prompt": "same", "responses": ["x", "y"]} for i in ("d1", "d2")]
    project = seed.project(rows, kind="pairwise")
    a, b = seed.annotators(2)
    for pid in ("d1", "d2"):
        for who in (a, b):
            seed.label(project, pid, who, [[0], [1]])
    _, everything = export(db, project, tmp_path, format="trl")
    _path, deduped = export(db, project, tmp_path, format="trl", dedupe=True)
    assert everything["rows"]["train"] == 4 and deduped["rows"]["train"] == 1 and deduped["dropped"]["duplicates"] == 3


def test_split_by_prompt_is_disjoint_and_seeded(seed, db, tmp_path):
    rows = [{"id": f"s{i}", "prompt": f"q{i}", "responses": ["a", "b", "c"]} for i in range(60)]
    project = seed.project(rows)
    a, b = seed.annotators(2)
    for i in range(60):
        seed.label(project, f"s{i}", a, [[0], [1], [2]])
        if i % 2:
            seed.label(project, f"s{i}", b, [[2], [1], [0]])
    path, counts = export(db, project, tmp_path, format="trl", test_fraction=0.3, seed=7)
    ds = load(path)
    by_split = {s: {r["prompt_id"] for r in ds if r["split"] == s} for s in ("train", "test")}
    assert by_split["train"] and by_split["test"] and not by_split["train"] & by_split["test"]
    assert by_split["test"] == {f"s{i}" for i in range(60) if split_of(f"s{i}", seed=7, test_fraction=0.3) == "test"}
    assert counts["prompts"] == {"train": len(by_split["train"]), "test": len(by_split["test"])}
    (tmp_path / "again").mkdir()
    again, _ = export(db, project, tmp_path / "again", format="trl", test_fraction=0.3, seed=7)
    assert again.read_bytes() == path.read_bytes()  # deterministic, byte for byte
    _, other = export(db, project, tmp_path, format="trl", test_fraction=0.3, seed=8)
    other_test = {f"s{i}" for i in range(60) if split_of(f"s{i}", seed=8, test_fraction=0.3) == "test"}
    assert other_test != by_split["test"] and other["prompts"]["test"] == len(other_test)


@pytest.mark.parametrize("file_type", ["parquet", "jsonl", "jsonl.gz"])
def test_dataset_folder_loads_with_train_and_test(db, ranking, pairwise, tmp_path, file_type):
    project, _ = pairwise
    folder, manifest = export(
        db,
        project,
        tmp_path,
        format="trl",
        folder=True,
        file_type=file_type,
        test_fraction=0.5,
        seed=3,
        margin="llama2_small",
        template="hh",
    )
    dd = load_dataset(str(folder))
    assert isinstance(dd, DatasetDict) and set(dd) == {"train", "test"}
    train_ids, test_ids = set(dd["train"]["prompt_id"]), set(dd["test"]["prompt_id"])
    assert train_ids and test_ids and not train_ids & test_ids
    assert dd["train"].features == Features.from_arrow_schema(
        arrow_schema(columns(ExportOptions(format="trl", margin="llama2_small"), split_column=False))
    )
    assert {s: len(dd[s]) for s in dd} == manifest["counts"]["rows"]
    for entry in manifest["files"]:
        assert hashlib.sha256((folder / entry["path"]).read_bytes()).hexdigest() == entry["sha256"]
        assert (folder / entry["path"]).stat().st_size == entry["bytes"]
    on_disk = json.loads((folder / "manifest.json").read_text())
    assert on_disk["options"]["margin"] == "llama2_small" and on_disk["counts"] == manifest["counts"]
    card = (folder / "README.md").read_text()
    assert card.startswith("---\nconfigs:")
    # p0: 1 of 3 annotator pairs agree; p1: a tie against a preference scores 1/2 -> (1 + 0.5) / 4
    assert "| agreement_tie_half_pooled | 0.375 |" in card
    ranked = db.scalars(select(Annotation).where(Annotation.project_id == project.id, Annotation.ranking.is_not(None))).all()
    untouched = sum(not a.order_changed for a in ranked)
    share = f"{100 * untouched / len(ranked):.0f}% ({untouched} of {len(ranked)})"
    assert f"Labels with a ranking or choice submitted in the order shown, untouched: {share}." in card
    assert f"| train | {manifest['counts']['rows']['train']} | {manifest['counts']['prompts']['train']} |" in card
    if file_type == "jsonl.gz":
        assert gzip.decompress((folder / "data/train.jsonl.gz").read_bytes()).startswith(b'{"prompt":')


def test_every_format_in_a_folder_matches_its_card_features(db, ranking, tmp_path):
    project, _ = ranking
    for fmt in ("trl", "trl-chat", "hh", "listwise", "raw"):
        (tmp_path / fmt).mkdir()
        folder, _ = export(db, project, tmp_path / fmt, format=fmt, folder=True, file_type="jsonl")
        ds = load_dataset(str(folder), split="train")
        assert ds.column_names == [n for n, _ in columns(ExportOptions(format=fmt), split_column=False)], fmt
        assert len(ds) > 0


@pytest.mark.parametrize("file_type", ["parquet", "jsonl"])
def test_folder_with_an_empty_split_still_loads(db, pairwise, tmp_path, file_type):
    project, _ = pairwise
    test_ids = {p: split_of(p, seed=0, test_fraction=0.001) for p in ("p0", "p1")}
    assert set(test_ids.values()) == {"train"}  # nothing lands in test at 0.1 %
    folder, manifest = export(db, project, tmp_path, format="trl", folder=True, file_type=file_type, test_fraction=0.001)
    dd = load_dataset(str(folder))
    assert len(dd["train"]) == manifest["counts"]["rows"]["train"] == 4 and manifest["counts"]["rows"]["test"] == 0
    assert set(dd) == {"train"} and not (folder / "data" / f"test.{file_type}").exists()
    assert [f["path"] for f in manifest["files"]] == [f"data/train.{file_type}", "skips.jsonl", "README.md"]


def test_raw_keeps_a_prompt_whose_only_label_has_no_ranking(seed, db, tmp_path):
    project = seed.project([{"id": "n1", "prompt": "p", "responses": ["x", "y"]}], kind="pairwise")
    (a,) = seed.annotators(1)
    seed.label(project, "n1", a, None, none_acceptable=True)
    _, raw = export(db, project, tmp_path, format="raw")
    _, pairs = export(db, project, tmp_path, format="trl")
    assert raw["rows"]["train"] == 1 and raw["prompts"]["train"] == 1
    assert pairs["rows"]["train"] == 0 and pairs["dropped"]["below_min_annotators"] == 1


def test_folder_card_types_columns_that_start_out_null(seed, db, tmp_path):
    """JSONL has no schema: `datasets` reads it in blocks and fixes each column's type from the first
    one, so a column that is null for the first rows (responses uploaded without a model) and a string
    later breaks a bare file. The card's features type every column, so the folder loads as it is."""
    rows = [
        {
            "id": f"m{i:02d}",
            "prompt": f"question {i}",
            "responses": [{"text": f"yes {i}", "model": "m-7b"}, {"text": f"no {i}", "model": "m-13b"}]
            if i >= 30
            else [f"yes {i}", f"no {i}"],
        }
        for i in range(40)
    ]
    project = seed.project(rows, kind="pairwise")
    (a,) = seed.annotators(1)
    for i in range(40):
        seed.label(project, f"m{i:02d}", a, [[0], [1]])
    folder, _ = export(db, project, tmp_path, format="trl", folder=True, file_type="jsonl", consensus="majority")
    with pytest.raises(DatasetGenerationError):  # the bare file, read in small blocks
        load_dataset("json", data_files=str(folder / "data/train.jsonl"), split="train", chunksize=1024)
    ds = load_dataset(str(folder), split="train", chunksize=1024)
    assert ds.features["chosen_model"] == Value("string") and ds.features["agreement"] == Value("float64")
    assert [r["chosen_model"] for r in ds][29:31] == [None, "m-7b"] and ds[0]["agreement"] is None
