"""The checks a submitted label passes before it is stored, each with the message the annotator sees
(422 naming what is wrong). No database: the rules take the project and the task's response ids."""

import pytest

from app.annotation.schemas import AnnotationCreate
from app.annotation.service import _check_ratings, _normalise_judgement
from app.errors import Unprocessable
from app.models import Project
from app.models.project import ProjectKind

IDS = {11, 12, 13}


def ranking(**fields) -> Project:
    return Project(kind=ProjectKind.ranking, allow_ties=fields.pop("allow_ties", False), **fields)


def pairwise(**fields) -> Project:
    return Project(kind=ProjectKind.pairwise, allow_ties=fields.pop("allow_ties", False), **fields)


def check(project, ids, **data):
    return _normalise_judgement(project, ids, AnnotationCreate(**data))


class TestRanking:
    def test_a_ranking_becomes_tiers(self):
        assert check(ranking(), IDS, ranking=[[12], [11], [13]]) == [[12], [11], [13]]
        assert check(ranking(allow_ties=True), IDS, ranking=[[12, 11], [13]]) == [[12, 11], [13]]
        assert check(ranking(), IDS) is None  # nothing chosen: none acceptable or a flag only

    @pytest.mark.parametrize(
        "data, message",
        [
            ({"chosen": 11}, "This is a ranking project: send `ranking`, not chosen/rejected/tie"),
            ({"rejected": 11}, "This is a ranking project: send `ranking`, not chosen/rejected/tie"),
            ({"tie": True}, "This is a ranking project: send `ranking`, not chosen/rejected/tie"),
            ({"strength": 0, "ranking": [[11], [12], [13]]}, "`strength` is only for pairwise projects"),
            ({"ranking": [[11], [], [12, 13]]}, "`ranking` must not contain empty groups"),
            ({"ranking": [[11], [12]]}, "`ranking` must list each of the prompt's responses exactly once: expected [11, 12, 13], got [11, 12]"),
            ({"ranking": [[11], [12], [12]]}, "`ranking` must list each of the prompt's responses exactly once: expected [11, 12, 13], got [11, 12, 12]"),
            ({"ranking": [[11], [12], [14]]}, "`ranking` must list each of the prompt's responses exactly once"),
            ({"ranking": [[11, 12], [13]]}, "This project does not allow ties: every group in `ranking` must hold one response"),
        ],
    )  # fmt: skip
    def test_refused(self, data, message):
        with pytest.raises(Unprocessable) as error:
            check(ranking(), IDS, **data)
        assert str(error.value).startswith(message)


class TestPairwise:
    def test_a_choice_becomes_two_tiers(self):
        assert check(pairwise(), {1, 2}, chosen=2, rejected=1) == [[2], [1]]
        assert check(pairwise(allow_ties=True), {2, 1}, tie=True) == [[1, 2]]
        assert check(pairwise(strength_scale=["much", "slightly"]), {1, 2}, chosen=1, rejected=2, strength=1) == [[1], [2]]
        assert check(pairwise(), {1, 2}) is None

    @pytest.mark.parametrize(
        "project, data, message",
        [
            ({}, {"ranking": [[1], [2]]}, "This is a pairwise project: send `chosen` and `rejected` (or `tie`), not `ranking`"),
            ({}, {"tie": True}, "This project does not allow ties"),
            ({"allow_ties": True}, {"tie": True, "strength": 0}, "A tie has no `strength`"),
            ({}, {"chosen": 1, "rejected": 3}, "`chosen` and `rejected` must be this task's two responses [1, 2], got chosen=1, rejected=3"),
            ({}, {"chosen": 1}, "`chosen` and `rejected` must be this task's two responses [1, 2], got chosen=1, rejected=None"),
            ({}, {"chosen": 1, "rejected": 1}, "`chosen` and `rejected` must be this task's two responses"),
            ({"strength_scale": ["much", "slightly"]}, {"chosen": 1, "rejected": 2},
             "`strength` is required: an index 0..1 into ['much', 'slightly']"),
            ({"strength_scale": ["much", "slightly"]}, {"chosen": 1, "rejected": 2, "strength": 2}, "`strength` must be between 0 and 1"),
            ({}, {"chosen": 1, "rejected": 2, "strength": 0}, "This project collects no preference strength"),
        ],
    )  # fmt: skip
    def test_refused(self, project, data, message):
        with pytest.raises(Unprocessable) as error:
            check(pairwise(**project), {1, 2}, **data)
        assert str(error.value) == message or str(error.value).startswith(message)


class TestRatings:
    CRITERIA = [{"name": "style", "min": 1, "max": 5}, {"name": "facts", "min": 0, "max": 1}]

    def test_ratings_inside_the_range_pass(self):
        project = ranking(rating_criteria=self.CRITERIA)
        assert _check_ratings(project, IDS, {"style": {11: 1, 12: 5}, "facts": {13: 0.5}}) is None
        assert _check_ratings(project, IDS, None) is None and _check_ratings(project, IDS, {}) is None

    @pytest.mark.parametrize(
        "ratings, message",
        [
            ({"tone": {11: 3}}, "ratings: unknown criterion 'tone'; this project has ['facts', 'style']"),
            ({"style": {14: 3}}, "ratings.style: response 14 is not part of this task"),
            ({"style": {11: 6}}, "ratings.style: 6 for response 11 is outside 1..5"),  # a rating above its range
            ({"style": {11: 0.5}}, "ratings.style: 0.5 for response 11 is outside 1..5"),
        ],
    )
    def test_refused(self, ratings, message):
        with pytest.raises(Unprocessable) as error:
            _check_ratings(ranking(rating_criteria=self.CRITERIA), IDS, ratings)
        assert str(error.value) == message

    def test_a_project_without_criteria_names_none(self):
        with pytest.raises(Unprocessable, match=r"^ratings: unknown criterion 'style'; this project has none$"):
            _check_ratings(ranking(), IDS, {"style": {11: 3}})
