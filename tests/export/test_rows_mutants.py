"""Export rows built by hand, without a database: RowBuilder takes a Group (a prompt, its responses and labels) and
the options, so every field of a raw, listwise and pair row can be pinned (see TESTING.md, mutation testing)."""

from datetime import UTC, datetime

import pytest

from app.export.options import ExportOptions
from app.export.rows import Group, Label, RowBuilder
from app.models import Project

CHAT = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi?"}]
RESPONSES = [(11, "one", "m1"), (12, "two", "m2"), (13, "three", None)]


def builder(scale=None, emails=None, **options) -> RowBuilder:
    project = Project(name="p", kind="ranking", strength_scale=scale)
    return RowBuilder(options=ExportOptions(**options), project=project, emails=emails or {}, split_column=False)


def group(labels, *, messages=CHAT, is_chat=True, is_gold=False, responses=RESPONSES) -> Group:
    return Group(7, "ext-7", messages, is_chat, is_gold, list(responses), labels)


def label(annotation_id, annotator_id, tiers, strength=None, extra=()) -> Label:
    return Label(annotation_id, annotator_id, tiers, strength, None, False, extra)


class TestRaw:
    def test_every_field_of_a_chat_prompt(self):
        leased = datetime(2026, 1, 2, 3, 4, 5)  # SQLite gives naive UTC
        created = datetime(2026, 1, 2, 3, 9, 5, tzinfo=UTC)
        revised = datetime(2026, 1, 3, 3, 9, 5, tzinfo=UTC)
        extra = ("ranking", None, "clear", {"style": {"12": 4, "11": 2.5}}, [12, 11, 13], True, 1500, leased, created, 2, revised)
        lab = label(101, 5, [[12], [11], [13]], strength=1, extra=extra)
        _, rows = builder(["much", "slightly"], emails={5: "a@example.org"}, format="raw").rows(group([lab], is_gold=True))
        assert rows == [
            {
                "annotation_id": 101,
                "prompt_id": "ext-7",
                "prompt": "System: Be brief.\n\nUser: Hi?",
                "messages": CHAT,
                "responses": ["one", "two", "three"],
                "response_ids": [11, 12, 13],
                "models": ["m1", "m2", None],
                "kind": "ranking",
                "annotator_id": 5,
                "annotator_email": "a@example.org",
                "ranking": [[12], [11], [13]],
                "strength": 1,
                "strength_label": "slightly",
                "none_acceptable": False,
                "flag": None,
                "flag_reason": None,
                "rationale": "clear",
                "ratings": [
                    {"criterion": "style", "response_id": 11, "value": 2.5},
                    {"criterion": "style", "response_id": 12, "value": 4.0},
                ],
                "shown_order": [12, 11, 13],
                "order_changed": True,
                "time_spent_ms": 1500,
                "leased_at": "2026-01-02T03:04:05+00:00",
                "created_at": "2026-01-02T03:09:05+00:00",
                "revision": 2,
                "revised_at": "2026-01-03T03:09:05+00:00",
                "is_gold": True,
            }
        ]

    def test_a_strength_outside_the_scale_has_no_label(self):
        # The scale has 2 levels (0, 1): strength 2 (a scale shortened after labelling) names no level.
        extra = ("ranking", None, None, None, None, False, None, None, None, 0, None)
        rows = builder(["much", "slightly"], format="raw").rows(group([label(1, 5, [[11], [12, 13]], 2, extra)]))[1]
        assert (rows[0]["strength"], rows[0]["strength_label"]) == (2, None)
        rows = builder(["much", "slightly"], format="raw").rows(group([label(1, 5, [[11], [12, 13]], 0, extra)]))[1]
        assert rows[0]["strength_label"] == "much"

    def test_the_hh_template_applies_to_raw_rows_too(self):
        extra = ("ranking", None, None, None, None, False, None, None, None, 0, None)
        rows = builder(format="raw", template="hh").rows(group([label(1, 5, [[11], [12, 13]], extra=extra)]))[1]
        assert rows[0]["prompt"] == "\n\nSystem: Be brief.\n\nHuman: Hi?\n\nAssistant:"


class TestListwise:
    def test_a_consensus_row(self):
        # Borda of [[12], [11], [13]] and [[12], [13], [11]]: 12 first, 11 and 13 tie (mean ranks 2.5 each).
        labels = [label(1, 5, [[12], [11], [13]]), label(2, 6, [[12], [13], [11]])]
        _, rows = builder(format="listwise", consensus="borda", template="hh").rows(group(labels))
        assert rows == [
            {
                "prompt": "\n\nSystem: Be brief.\n\nHuman: Hi?\n\nAssistant:",
                "responses": [" one", " two", " three"],
                "response_ids": [11, 12, 13],
                "models": ["m1", "m2", None],
                "ranking": [[1], [0, 2]],
                "ranks": [2, 1, 2],
                "prompt_id": "ext-7",
                "consensus": "borda",
                "n_annotators": 2,
                "agreement": pytest.approx(2 / 3),  # (12, 11) and (12, 13) agree, (11, 13) disagrees: 2 of 3
            }
        ]

    def test_per_annotator_rows_of_a_chat_prompt(self):
        labels = [label(1, 5, [[13], [11, 12]])]
        _, rows = builder(format="listwise").rows(group(labels))
        (row,) = rows
        assert row["prompt"] == "System: Be brief.\n\nUser: Hi?" and row["responses"] == ["one", "two", "three"]
        assert (row["ranks"], row["annotator_id"], row["annotation_id"]) == ([2, 2, 1], 5, 1)
        assert "consensus" not in row


class TestPairs:
    def test_a_chat_prompt_as_a_raw_transcript(self):
        rows = builder(format="trl", template="raw").rows(group([label(1, 5, [[11], [12, 13]])]))[1]
        assert {r["prompt"] for r in rows} == {"System: Be brief.\n\nUser: Hi?"}
        assert [(r["chosen"], r["rejected"]) for r in rows] == [("one", "two"), ("one", "three")]


SCALE_4 = ["significantly", "better", "slightly", "negligibly"]


class TestMargin:
    """Llama 2: n levels, strength s (0 = strongest): large n-1-s, small (n-1-s)/(n-1); no strength counts as 0."""

    @pytest.mark.parametrize(
        "scale, strengths, margin, expected",
        [
            (SCALE_4, [1, None], "llama2_large", (2 + 0) / 2),
            (SCALE_4, [1, None], "llama2_small", (2 + 0) / 2 / 3),
            (SCALE_4, [0], "llama2_small", 1.0),
            (["better", "unsure"], [0], "llama2_small", 1.0),  # two levels: n - 1 = 1
            (["better", "unsure"], [1], "llama2_small", 0.0),
            (["only"], [0], "llama2_small", 0.0),  # one level: no room for a margin, not a division by zero
            (["only"], [0], "llama2_large", 0.0),
            (SCALE_4, [], "llama2_large", 0.0),  # no supporter of the pair: nothing to average
            (SCALE_4, [], "llama2_small", 0.0),
        ],
    )
    def test_llama2(self, scale, strengths, margin, expected):
        assert builder(scale, margin=margin)._margin(strengths, 1) == pytest.approx(expected)

    def test_a_tie_and_rank_distance(self):
        assert builder(SCALE_4, margin="llama2_large")._margin([0], 0) == 0.0
        assert builder(SCALE_4, margin="rank_distance")._margin([0], 3) == 3.0


class TestPairRows:
    def test_every_field_of_a_per_annotator_pair(self):
        rows = builder(format="trl", template="raw").rows(
            group([label(1, 5, [[13], [11]])], responses=RESPONSES[:1] + RESPONSES[2:])
        )[1]
        assert rows == [
            {
                "prompt": "System: Be brief.\n\nUser: Hi?",
                "chosen": "three",
                "rejected": "one",
                "tie": False,
                "prompt_id": "ext-7",
                "chosen_response_id": 13,
                "rejected_response_id": 11,
                "chosen_model": None,
                "rejected_model": "m1",
                "annotator_id": 5,
                "annotation_id": 1,
            }
        ]

    def test_dedupe_drops_a_repeat_and_goes_on(self):
        # Responses 11 and 12 read the same: (12, 13) repeats (11, 13) and (12, 14) repeats (11, 14); (13, 14) is new.
        responses = [(11, "x", None), (12, "x", None), (13, "y", None), (14, "z", None)]
        b = builder(format="trl", template="raw", dedupe=True)
        rows = b.rows(group([label(1, 5, [[11], [12], [13], [14]])], responses=responses))[1]
        assert [(r["chosen"], r["rejected"]) for r in rows] == [("x", "x"), ("x", "y"), ("x", "z"), ("y", "z")]
        assert b.dropped["duplicates"] == 2

    def test_the_chosen_and_rejected_votes_follow_the_pair(self):
        # Majority: 13 over 11 by 2-1. The votes are stored for (lower id, higher id) = (11, 13): (1, 2, 0).
        labels = [label(1, 5, [[13], [11]]), label(2, 6, [[13], [11]]), label(3, 7, [[11], [13]])]
        rows = builder(format="trl", consensus="majority").rows(group(labels, responses=RESPONSES[:1] + RESPONSES[2:]))[1]
        assert [(r["chosen_response_id"], r["votes_chosen"], r["votes_rejected"], r["votes_tie"]) for r in rows] == [
            (13, 2, 1, 0)
        ]


class TestKeep:
    def test_every_dropped_prompt_is_counted(self):
        b = builder(format="trl", exclude_gold=True, min_annotators=2)
        for _ in range(2):
            assert b.rows(group([label(1, 5, [[11], [12], [13]])], is_gold=True)) == ("train", [])
            assert b.rows(group([label(1, 5, [[11], [12], [13]])])) == ("train", [])
        assert b.dropped == {"below_min_annotators": 2, "below_min_agreement": 0, "gold": 2, "duplicates": 0}

    def test_the_named_method_makes_the_consensus(self):
        # Ranked Pairs locks only 11 > 12 (2-0); 13 splits 1-1 with both, so 11 and 13 share the first layer.
        # Borda would rank 11 (mean rank 1.5), 13 (2), 12 (2.5).
        labels = [label(1, 5, [[11], [12], [13]]), label(2, 6, [[13], [11], [12]])]
        rows = builder(format="listwise", consensus="ranked_pairs").rows(group(labels))[1]
        assert [r["ranking"] for r in rows] == [[[0, 2], [1]]]

    def test_raw_with_min_agreement_and_no_ranking_is_kept(self):
        # Nothing ranked: no agreement to measure, so no consensus is built and the annotation is still exported.
        extra = ("ranking", None, None, None, None, False, None, None, None, 0, None)
        lab = Label(1, 5, None, None, None, True, extra)
        rows = builder(format="raw", min_agreement=0.5).rows(group([lab]))[1]
        assert [(r["annotation_id"], r["ranking"], r["none_acceptable"]) for r in rows] == [(1, None, True)]


def test_annotators_counted_are_those_whose_labels_gave_rows():
    # A label without a ranking gives no pair, so its annotator is not counted; in raw every annotation is a row.
    extra = ("ranking", None, None, None, None, False, None, None, None, 0, None)
    labels = [label(1, 5, [[11], [12], [13]], extra=extra), Label(2, 6, None, None, "spam", False, extra)]
    pairs = builder(format="trl")
    pairs.rows(group(labels))
    raw = builder(format="raw")
    raw.rows(group(labels))
    assert (pairs.annotators, raw.annotators) == ({5}, {5, 6})


def test_an_unknown_pairs_mode():
    from app.export.pairs import select_pairs

    with pytest.raises(ValueError, match=r"^unknown pairs mode 'some'$"):
        list(select_pairs([[1], [2]], "some", False))
