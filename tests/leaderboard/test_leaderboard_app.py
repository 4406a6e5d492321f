"""The leaderboard from the database (API, page, CLI) against a brute-force count over the stored labels and an
independent maximum-likelihood fit (tests/leaderboard/test_bradley_terry.py's scipy reference, same prior)."""

import itertools
import random
from collections import Counter, defaultdict

import numpy as np
import pytest
from sqlalchemy import select

from app.models import Annotation, Prompt, Response, Role
from tests.cli.test_cli import preflab
from tests.leaderboard.test_bradley_terry import scipy_reference
from tests.seeding import Seeder

MODELS = ["alpha", "beta", "gamma", "delta"]
QUALITY = {"alpha": 3.0, "beta": 2.0, "gamma": 1.0, "delta": 0.0, None: 1.5}
URL = "/api/projects/{}/leaderboard"


@pytest.fixture
def staff(make_user):
    return make_user(Role.researcher)


def ranking_project(seed: Seeder, *, prompts: int = 24, annotators: int = 4, rng_seed: int = 0):
    """Prompts of four responses from the models (sometimes one without a model, sometimes two of one model),
    labelled by annotators who rank by quality plus noise, with ties, and rate helpfulness on most labels."""
    rng = random.Random(rng_seed)
    rows, models = [], {}
    for p in range(prompts):
        chosen = rng.sample(MODELS, 4)
        if p % 5 == 0:
            chosen[3] = None  # a response without a model
        if p % 7 == 0:
            chosen[2] = chosen[1]  # two responses of one model
        models[f"q{p}"] = chosen
        rows.append(
            {
                "id": f"q{p}",
                "prompt": f"prompt {p}",
                "responses": [{"text": f"r{p}-{k}", **({"model": m} if m else {})} for k, m in enumerate(chosen)],
            }
        )
    project = seed.project(
        rows,
        kind="ranking",
        allow_ties=True,
        rating_criteria=[{"name": "helpfulness", "min": 1, "max": 7}],
    )
    people = seed.annotators(annotators)
    for p in range(prompts):
        ids = [r.id for r in seed.responses(project, f"q{p}")]
        for person in people:
            if rng.random() < 0.2:
                continue
            noisy = [QUALITY[m] + rng.gauss(0, 1.2) for m in models[f"q{p}"]]
            values = [round(v) for v in noisy]  # rounding makes ties
            tiers = [sorted(k for k in range(4) if values[k] == v) for v in sorted(set(values), reverse=True)]
            ratings = None
            if rng.random() < 0.8:
                ratings = {"helpfulness": {str(ids[k]): float(min(7, max(1, values[k] + 3))) for k in range(4)}}
            seed.label(project, f"q{p}", person, tiers, ratings=ratings)
    return project, people


def brute_force(db, project, *, exclude=(), prompts=None, criterion=None):
    """Decisions straight from the stored labels: every unordered pair of responses of different known models."""
    model = dict(db.execute(select(Response.id, Response.model).join(Prompt).where(Prompt.project_id == project.id)).all())
    decisions = []  # (winner, loser, score, prompt)
    for annotation in db.scalars(select(Annotation).where(Annotation.project_id == project.id)):
        if annotation.annotator_id in exclude or (prompts is not None and annotation.prompt_id not in prompts):
            continue
        if criterion is None:
            rank = {rid: place for place, tier in enumerate(annotation.ranking) for rid in tier}
        else:
            scores = (annotation.ratings or {}).get(criterion)
            if not scores:
                continue
            rank = {int(rid): -value for rid, value in scores.items()}  # lower rank = better
        for r, s in itertools.combinations(sorted(rank), 2):
            if model[r] is None or model[s] is None or model[r] == model[s]:
                continue
            if rank[r] == rank[s]:
                decisions.append((model[r], model[s], 0.5, annotation.prompt_id))
            elif rank[r] < rank[s]:
                decisions.append((model[r], model[s], 1.0, annotation.prompt_id))
            else:
                decisions.append((model[s], model[r], 1.0, annotation.prompt_id))
    return decisions


def check_against(board: dict, decisions: list) -> None:
    names = sorted({d[0] for d in decisions} | {d[1] for d in decisions})
    assert sorted(m["model"] for m in board["models"]) == names
    assert board["decisions"] == len(decisions)
    assert board["prompts"] == len({d[3] for d in decisions})
    wins, ties = Counter(), Counter()
    for winner, loser, score, _ in decisions:
        if score == 1:
            wins[winner, loser] += 1
        else:
            ties[frozenset((winner, loser))] += 1
    for row in board["models"]:
        m = row["model"]
        assert row["wins"] == sum(n for (w, _), n in wins.items() if w == m)
        assert row["losses"] == sum(n for (_, l), n in wins.items() if l == m)
        assert row["ties"] == sum(n for pair, n in ties.items() if m in pair)
        assert row["decisions"] == row["wins"] + row["losses"] + row["ties"]
    order = [m["model"] for m in board["models"]]
    for i, row in enumerate(board["matrix"]):
        for j, cell in enumerate(row):
            x, y = order[i], order[j]
            assert (cell["model"], cell["opponent"]) == (x, y)
            n = wins[x, y] + wins[y, x] + ties[frozenset((x, y))] if x != y else 0
            assert (cell["decisions"], cell["wins"], cell["losses"]) == (
                n,
                wins[x, y] if x != y else 0,
                wins[y, x] if x != y else 0,
            )
            assert cell["ties"] == (ties[frozenset((x, y))] if x != y else 0)
            expected = (wins[x, y] + 0.5 * ties[frozenset((x, y))]) / n if n else None
            assert cell["win_rate"] == (pytest.approx(expected) if expected is not None else None)
    # Ratings: the independent fit, mean anchored at 1000 (or the baseline)
    index = {m: i for i, m in enumerate(names)}
    a = np.array([index[d[0]] for d in decisions])
    b = np.array([index[d[1]] for d in decisions])
    theta = scipy_reference(a, b, np.array([d[2] for d in decisions]), len(names))
    baseline = board["options"]["baseline"]
    anchor = theta[index[baseline]] if baseline else theta.mean()
    for row in board["models"]:
        assert row["rating"] == pytest.approx(1000 + 400 / np.log(10) * (theta[index[row["model"]]] - anchor), abs=1e-6)
        assert row["ci_low"] <= row["rating"] + 1e-9 and row["rating"] <= row["ci_high"] + 1e-9
    ratings = [m["rating"] for m in board["models"]]
    assert ratings == sorted(ratings, reverse=True)


class TestLeaderboardApi:
    def test_ratings_counts_and_matrix_equal_the_brute_force_and_reference_fit(self, client, db, seed, staff, bearer):
        project, _ = ranking_project(seed)
        board = client.get(URL.format(project.id), headers=bearer(staff)).json()
        decisions = brute_force(db, project)
        check_against(board, decisions)
        assert [m["model"] for m in board["models"]] == MODELS  # the quality order shows
        assert board["left_out"]["no_model"] > 0 and board["left_out"]["same_model"] > 0
        assert board["options"] == {
            "exclude_annotator": [], "min_agreement": None, "criterion": None, "baseline": None, "resamples": 200, "seed": 0
        }  # fmt: skip
        assert board["annotators"] == 4

    def test_pairwise_project(self, client, db, seed, staff, bearer):
        rows = [
            {
                "id": f"p{i}",
                "prompt": f"p{i}",
                "responses": [{"text": "a", "model": "x"}, {"text": "b", "model": "y" if i % 3 else "z"}],
            }
            for i in range(9)
        ]
        project = seed.project(rows, kind="pairwise", allow_ties=True)
        people = seed.annotators(2)
        for i in range(9):
            seed.label(project, f"p{i}", people[0], [[0], [1]] if i % 2 else [[1], [0]])
            seed.label(project, f"p{i}", people[1], [[0, 1]] if i % 4 == 0 else [[0], [1]])
        board = client.get(URL.format(project.id), headers=bearer(staff)).json()
        check_against(board, brute_force(db, project))

    def test_never_winning_model_is_finite(self, client, db, seed, staff, bearer):
        rows = [
            {"id": f"p{i}", "prompt": f"p{i}", "responses": [{"text": "a", "model": "good"}, {"text": "b", "model": "bad"}]}
            for i in range(4)
        ]
        project = seed.project(rows, kind="pairwise")
        (person,) = seed.annotators(1)
        for i in range(4):
            seed.label(project, f"p{i}", person, [[0], [1]])
        board = client.get(URL.format(project.id), headers=bearer(staff)).json()
        good, bad = board["models"]
        assert (good["model"], good["wins"], bad["model"], bad["wins"]) == ("good", 4, "bad", 0)
        assert np.isfinite([good["rating"], bad["rating"], bad["ci_low"], good["ci_high"]]).all()
        check_against(board, brute_force(db, project))

    def test_exclude_annotators(self, client, db, seed, staff, bearer):
        project, people = ranking_project(seed)
        excluded = {people[0].id, people[2].id}
        params = [("exclude_annotator", people[0].id), ("exclude_annotator", people[2].id)]
        board = client.get(URL.format(project.id), params=params, headers=bearer(staff)).json()
        check_against(board, brute_force(db, project, exclude=excluded))
        assert board["options"]["exclude_annotator"] == [people[0].id, people[2].id]
        assert board["annotators"] == 2
        labels = db.scalars(select(Annotation).where(Annotation.annotator_id.in_(excluded))).all()
        assert board["left_out"]["excluded_labels"] == len(labels)

    def test_min_agreement(self, client, db, seed, staff, bearer):
        project, people = ranking_project(seed)
        excluded = {people[3].id}
        # Per-prompt agreement, tie = ½, pooled over annotator pairs x response pairs, among the annotators kept
        ranks = defaultdict(list)
        for annotation in db.scalars(select(Annotation).where(Annotation.project_id == project.id)):
            if annotation.annotator_id not in excluded:
                ranks[annotation.prompt_id].append({rid: k for k, tier in enumerate(annotation.ranking) for rid in tier})
        agreement = {}
        for prompt_id, labels in ranks.items():
            scores = [
                1 - abs(np.sign(x[r] - x[s]) - np.sign(y[r] - y[s])) / 2
                for x, y in itertools.combinations(labels, 2)
                for r, s in itertools.combinations(sorted(x), 2)
            ]
            if scores:
                agreement[prompt_id] = sum(scores) / len(scores)
        threshold = float(np.median(list(agreement.values())))
        kept = {p for p, v in agreement.items() if v >= threshold}
        assert 0 < len(kept) < len(ranks)
        params = {"min_agreement": threshold, "exclude_annotator": people[3].id}
        board = client.get(URL.format(project.id), params=params, headers=bearer(staff)).json()
        check_against(board, brute_force(db, project, exclude=excluded, prompts=kept))
        assert board["left_out"]["prompts_below_agreement"] == len(ranks) - len(kept)

    def test_criterion_and_baseline(self, client, db, seed, staff, bearer):
        project, _ = ranking_project(seed)
        params = {"criterion": "helpfulness", "baseline": "gamma"}
        board = client.get(URL.format(project.id), params=params, headers=bearer(staff)).json()
        decisions = brute_force(db, project, criterion="helpfulness")
        assert len(decisions) != len(brute_force(db, project))
        check_against(board, decisions)
        gamma = next(m for m in board["models"] if m["model"] == "gamma")
        assert gamma["rating"] == pytest.approx(1000) and gamma["ci_low"] == pytest.approx(1000)

    def test_seeded_bootstrap(self, client, seed, staff, bearer):
        project, _ = ranking_project(seed, prompts=12)
        headers = bearer(staff)
        first = client.get(URL.format(project.id), params={"seed": 3}, headers=headers).json()
        again = client.get(URL.format(project.id), params={"seed": 3}, headers=headers).json()
        other = client.get(URL.format(project.id), params={"seed": 4, "resamples": 300}, headers=headers).json()
        assert first["models"] == again["models"]
        assert [m["rating"] for m in first["models"]] == [m["rating"] for m in other["models"]]
        assert [m["ci_low"] for m in first["models"]] != [m["ci_low"] for m in other["models"]]

    @pytest.mark.parametrize(
        ("params", "named"),
        [
            ({"criterion": "honesty"}, "criterion: unknown criterion 'honesty' (this project's criteria: helpfulness)"),
            ({"baseline": "omega"}, "baseline: model 'omega' has no decisions here"),
            ({"exclude_annotator": 999999}, "exclude_annotator: no labels in this project by annotator id 999999"),
            ({"resamples": 50}, "resamples"),
            ({"exclude_annotator": 2**40}, "exclude_annotator"),
            ({"min_agreement": 2}, "min_agreement"),
            ({"colour": "red"}, "colour"),
        ],
    )
    def test_bad_options_are_422_naming_them(self, client, seed, staff, bearer, params, named):
        project, _ = ranking_project(seed, prompts=3)
        response = client.get(URL.format(project.id), params=params, headers=bearer(staff))
        assert response.status_code == 422
        assert named in response.text

    def test_empty_project_has_no_models_and_says_why(self, client, make_project, staff, bearer):
        project = make_project()
        board = client.get(URL.format(project.id), headers=bearer(staff)).json()
        assert board["models"] == [] and board["matrix"] == [] and board["reason"]

    def test_permissions(self, client, seed, make_user, bearer, make_project):
        member = make_user(Role.annotator)
        project, _ = ranking_project(seed, prompts=2)
        from app.projects import service as projects

        seed.db.commit()
        projects.add_member(session=seed.db, project=project, user=member)
        seed.db.commit()
        assert client.get(URL.format(project.id)).status_code == 401
        assert client.get(URL.format(project.id), headers=bearer(member)).status_code == 403
        assert client.get(URL.format(project.id), headers=bearer(make_user(Role.annotator))).status_code == 404
        assert client.get(URL.format(project.id), headers=bearer(make_user(Role.researcher))).status_code == 200
        assert client.get(URL.format(project.id), headers=bearer(make_user(Role.admin))).status_code == 200


class TestLeaderboardPage:
    def test_page_shows_chart_matrix_and_table(self, login_as, seed, staff):
        project, people = ranking_project(seed, prompts=10)
        page = login_as(staff).get(f"/projects/{project.id}/leaderboard", params={"exclude_annotator": people[1].id})
        assert page.status_code == 200 and page.template.name == "leaderboard/page.html"
        html = page.text
        assert 'aria-label="Model ratings with 95% intervals"' in html and 'aria-label="Win-rate matrix"' in html
        assert "rating (Elo-like scale, 1000 = mean of all models)" in html  # the axis label
        assert all(f'data-model="{m}"' in html for m in MODELS)
        assert f'value="{people[1].id}" checked' in html
        assert "<script" not in html.split("</header>")[1]

    def test_project_page_links_it_for_staff_only(self, login_as, seed, staff, make_user):
        project, _ = ranking_project(seed, prompts=1)
        assert 'id="leaderboard-link"' in login_as(staff).get(f"/projects/{project.id}").text
        member = make_user(Role.annotator)
        from app.projects import service as projects

        seed.db.commit()
        projects.add_member(session=seed.db, project=project, user=member)
        seed.db.commit()
        assert 'id="leaderboard-link"' not in login_as(member).get(f"/projects/{project.id}").text

    def test_demo_models_are_in_a_clear_order(self, client, db, staff, bearer):
        from app import demo

        for _ in demo.create(db):
            pass
        db.commit()
        headers = bearer(staff)
        ranked = {}
        for name in (demo.RANKING_PROJECT, demo.PAIRWISE_PROJECT):
            project = db.scalar(select(demo.Project).where(demo.Project.name == name))
            ranked[name] = [m["model"] for m in client.get(URL.format(project.id), headers=headers).json()["models"]]
        # Two careful raters against a random one and a position-biased one (whose shown order is random on every
        # run): the strongest model leads and the weakest is in the bottom two whatever the shuffles did.
        for order in ranked.values():
            assert order[0] == "atlas-70b" and "drift-1b" in order[2:], order
        board = client.get(URL.format(project.id), params={"criterion": "x"}, headers=headers)
        assert board.status_code == 422


def test_cli_prints_the_table(seed, db):
    project, people = ranking_project(seed, prompts=8)
    out = preflab("leaderboard", project.name, "--exclude-annotator", people[0].email, "--seed", "2").stdout
    assert f"{project.name}: " in out and "95% interval" in out and "WIN RATES" in out
    lines = {line.split()[1]: line.split() for line in out.splitlines() if line.strip()[:1].isdigit()}
    assert set(lines) == set(MODELS)
    decisions = brute_force(db, project, exclude={people[0].id})
    wins = Counter(w for w, _, s, _ in decisions if s == 1)
    assert all(int(lines[m][5]) == wins[m] for m in MODELS)
    bad = preflab("leaderboard", project.name, "--criterion", "honesty", check=False)
    assert bad.returncode == 1 and "criterion: unknown criterion 'honesty'" in bad.stderr
