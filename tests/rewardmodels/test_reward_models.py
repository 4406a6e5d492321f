"""Reward-model evaluation (API, pages, CLI) against a brute-force count over the stored annotation rows: plain
loops over every label and every pair, written apart from the numpy code (app/rewardmodels/metrics.py)."""

import itertools
import math
import random
from collections import defaultdict

import orjson
import pytest
from sqlalchemy import select

from app.models import Annotation, Prompt, Response, RewardModel, RewardModelScore, Role
from app.projects import service as projects
from tests.cli.test_cli import preflab
from tests.seeding import Seeder

MODELS = ["alpha", "beta", "gamma", "delta"]
QUALITY = {"alpha": 3.0, "beta": 2.0, "gamma": 1.0, "delta": 0.0}
URL = "/api/projects/{}/reward-models"
CONVENTIONS = ("strict_only", "tie_half", "tie_as_category")


@pytest.fixture
def staff(make_user):
    return make_user(Role.researcher)


def ranking_project(seed: Seeder, *, prompts: int = 16, annotators: int = 3, rng_seed: int = 1):
    """Four responses a prompt, ranked by annotators by quality plus noise, with ties; some prompts get one label."""
    rng = random.Random(rng_seed)
    rows, models = [], {}
    for p in range(prompts):
        chosen = rng.sample(MODELS, 4)
        if p % 6 == 0:
            chosen[3] = chosen[0]  # two responses of one model
        models[f"q{p}"] = chosen
        rows.append(
            {
                "id": f"q{p}",
                "prompt": f"prompt {p}",
                "responses": [{"text": f"r{p}-{k}", "model": m} for k, m in enumerate(chosen)],
            }
        )
    project = seed.project(rows, kind="ranking", allow_ties=True)
    people = seed.annotators(annotators)
    for p in range(prompts):
        for i, person in enumerate(people):
            if p % 5 == 0 and i > 0:
                continue  # a prompt with one annotator: no ceiling entry
            values = [round(QUALITY[m] + rng.gauss(0, 1.3)) for m in models[f"q{p}"]]
            tiers = [sorted(k for k in range(4) if values[k] == v) for v in sorted(set(values), reverse=True)]
            seed.label(project, f"q{p}", person, tiers)
    return project, people


def score_file(seed: Seeder, project, *, rng_seed: int = 2, skip_every: int = 7) -> tuple[bytes, dict[int, float]]:
    """Noisy scores (rounded, so some are equal) for most responses, named in the three ways a row may name one."""
    rng = random.Random(rng_seed)
    lines, scores = [], {}
    n = 0
    for prompt in seed.db.scalars(select(Prompt).where(Prompt.project_id == project.id).order_by(Prompt.id)):
        for response in seed.db.scalars(select(Response).where(Response.prompt_id == prompt.id).order_by(Response.position)):
            n += 1
            if n % skip_every == 0:
                continue  # partial overlap: this response has no score
            score = round(QUALITY[response.model] + rng.gauss(0, 1.5), 1)
            scores[response.id] = score
            ref = [response.text, response.position, {"response_id": response.id}][n % 3]
            lines.append(orjson.dumps({"prompt_id": prompt.external_id, "response": ref, "score": score}))
    return b"\n".join(lines) + b"\n", scores


def upload(client, project, headers, content: bytes, name: str = "rm-v3", **params):
    return client.post(
        URL.format(project.id), params={"name": name, **params}, files={"file": ("scores.jsonl", content)}, headers=headers
    )


# -- the reference: brute force over the raw annotation rows ------------------------------------------------------


def verdict_points(human: str, verdict: str, convention: str) -> float | None:
    """human / verdict: "first", "second" or "tie". None: the decision does not count."""
    if human == "tie":
        return {"strict_only": None, "tie_half": 0.5, "tie_as_category": 1.0 if verdict == "tie" else 0.0}[convention]
    if verdict == "tie":
        return 0.5
    return 1.0 if verdict == human else 0.0


def mean_or_none(values):
    values = [v for v in values if v is not None]
    return (sum(values) / len(values), len(values)) if values else (None, 0)


def brute_force(db, project, scores: dict[int, float]):
    labels = defaultdict(dict)  # prompt -> annotator -> {response id: place}
    for annotation in db.scalars(select(Annotation).where(Annotation.project_id == project.id)):
        labels[annotation.prompt_id][annotation.annotator_id] = {
            rid: place for place, tier in enumerate(annotation.ranking) for rid in tier
        }
    model = dict(db.execute(select(Response.id, Response.model)).all())

    def human_verdict(places, r, s):
        return "tie" if places[r] == places[s] else ("first" if places[r] < places[s] else "second")

    def model_verdict(r, s):
        return "tie" if scores[r] == scores[s] else ("first" if scores[r] > scores[s] else "second")

    out = {"individual": defaultdict(list), "ceiling": defaultdict(list), "same": defaultdict(list)}
    out["level"] = defaultdict(lambda: defaultdict(list))
    out["pair"] = defaultdict(lambda: defaultdict(list))
    decisions = scored = 0
    calibration = []
    for by_annotator in labels.values():
        responses = sorted(next(iter(by_annotator.values())))
        pair_votes = {}
        for r, s in itertools.combinations(responses, 2):
            pair_votes[r, s] = [human_verdict(places, r, s) for places in by_annotator.values()]
        if len(by_annotator) == 1:
            level = "one annotator"
        elif all(len(set(v)) == 1 for v in pair_votes.values()):
            level = "unanimous"
        elif any(2 * max(v.count(x) for x in set(v)) <= len(v) for v in pair_votes.values()):
            level = "split"
        else:
            level = "majority"
        for (r, s), votes in pair_votes.items():
            for who, human in enumerate(votes):
                decisions += 1
                if r not in scores or s not in scores:
                    continue
                scored += 1
                verdict = model_verdict(r, s)
                others = votes[:who] + votes[who + 1 :]
                pair_name = " vs ".join(sorted([model[r], model[s]]))
                diff = scores[r] - scores[s]
                calibration.append((1 / (1 + math.exp(-diff)), {"first": 1.0, "second": 0.0, "tie": 0.5}[human]))
                for c in CONVENTIONS:
                    out["individual"][c].append(verdict_points(human, verdict, c))
                    out["level"][level][c].append(verdict_points(human, verdict, c))
                    out["pair"][pair_name][c].append(verdict_points(human, verdict, c))
                    if others:
                        counts = {x: others.count(x) for x in ("first", "second", "tie")}
                        best = max(counts.values())
                        leaders = [x for x, k in counts.items() if k == best]
                        majority = leaders[0] if len(leaders) == 1 else "tie"
                        out["ceiling"][c].append(verdict_points(human, majority, c))
                        out["same"][c].append(verdict_points(human, verdict, c))
    return out, decisions, scored, calibration


def assert_figures(figures: dict, expected: dict):
    for c in CONVENTIONS:
        value, n = mean_or_none(expected[c])
        assert figures[c]["n"] == n, c
        assert figures[c]["value"] == (pytest.approx(value) if value is not None else None), c


def consensus_reference(db, project, scores):
    """Borda by hand: mean place per response (a tie shares its places), higher mean place = better."""
    labels = defaultdict(list)
    for annotation in db.scalars(select(Annotation).where(Annotation.project_id == project.id)):
        labels[annotation.prompt_id].append(annotation.ranking)
    points = {c: [] for c in CONVENTIONS}
    for rankings in labels.values():
        mean_rank = defaultdict(float)
        for tiers in rankings:
            placed = 0
            for tier in tiers:
                for rid in tier:
                    mean_rank[rid] += (placed + (len(tier) + 1) / 2) / len(rankings)
                placed += len(tier)
        for r, s in itertools.combinations(sorted(mean_rank), 2):
            if r not in scores or s not in scores:
                continue
            gap = mean_rank[r] - mean_rank[s]
            human = "tie" if abs(gap) < 1e-9 else ("first" if gap < 0 else "second")
            verdict = "tie" if scores[r] == scores[s] else ("first" if scores[r] > scores[s] else "second")
            for c in CONVENTIONS:
                points[c].append(verdict_points(human, verdict, c))
    return points


class TestReport:
    def test_report_equals_the_brute_force_count(self, client, db, seed, staff, bearer):
        project, _ = ranking_project(seed)
        content, scores = score_file(seed, project)
        headers = bearer(staff)
        stored = upload(client, project, headers, content)
        assert stored.status_code == 201, stored.text
        assert stored.json() == {"name": "rm-v3", "filename": "scores.jsonl", "scored": len(scores), "replaced": False}
        report = client.get(f"{URL.format(project.id)}/rm-v3", headers=headers).json()
        expected, decisions, scored, calibration = brute_force(db, project, scores)
        assert (report["decisions"], report["scored"], report["unscored"]) == (decisions, scored, decisions - scored)
        assert 0 < scored < decisions  # partial overlap
        assert_figures(report["individual"], expected["individual"])
        assert_figures(report["ceiling"], expected["ceiling"])
        assert_figures(report["model_on_ceiling_pairs"], expected["same"])
        assert set(report["by_level"]) == set(expected["level"])
        for level, figures in report["by_level"].items():
            assert_figures(figures, expected["level"][level])
        assert set(report["by_model_pair"]) == set(expected["pair"])
        for pair, figures in report["by_model_pair"].items():
            assert_figures(figures, expected["pair"][pair])
        assert_figures(report["consensus"], consensus_reference(db, project, scores))
        # Calibration: both orientations, 10 bins, ECE by hand
        points = calibration + [(1 - x, 1 - y) for x, y in calibration]
        bins = defaultdict(list)
        for x, y in points:
            bins[min(int(x * 10), 9)].append((x, y))
        ece = 0.0
        for k, b in enumerate(report["calibration"]):
            members = bins.get(k, [])
            assert b["n"] == len(members)
            if members:
                px, py = sum(x for x, _ in members) / len(members), sum(y for _, y in members) / len(members)
                assert (b["predicted"], b["observed"]) == (pytest.approx(px), pytest.approx(py))
                ece += len(members) / len(points) * abs(py - px)
        assert report["ece"] == pytest.approx(ece)
        assert "72" in report["reference"] and "73" in report["reference"]

    def test_pairwise_project_trl_rows_and_ties(self, client, db, seed, staff, bearer):
        rows = [
            {"id": f"p{i}", "prompt": f"question {i % 5}", "responses": [{"text": f"good {i}", "model": "x"}, {"text": f"bad {i}", "model": "y"}]}
            for i in range(10)
        ]  # fmt: skip
        project = seed.project(rows, kind="pairwise", allow_ties=True)
        people = seed.annotators(3)
        for i in range(10):
            for j, person in enumerate(people):
                tiers = [[0, 1]] if (i + j) % 4 == 0 else ([[1], [0]] if (i * j) % 3 == 1 else [[0], [1]])
                seed.label(project, f"p{i}", person, tiers)
        lines, scores = [], {}
        for i in range(10):
            good, bad = seed.responses(project, f"p{i}")
            sg, sb = (1.0, 1.0) if i == 3 else (float(i % 3), -1.0)
            scores[good.id], scores[bad.id] = sg, sb
            lines.append(
                {
                    "prompt": f"question {i % 5}",
                    "chosen": good.text,
                    "rejected": bad.text,
                    "score_chosen": sg,
                    "score_rejected": sb,
                }
            )
        headers = bearer(staff)
        assert upload(client, project, headers, b"\n".join(map(orjson.dumps, lines))).status_code == 201
        report = client.get(f"{URL.format(project.id)}/rm-v3", headers=headers).json()
        expected, decisions, scored, _ = brute_force(db, project, scores)
        assert report["scored"] == scored == decisions == 30
        assert_figures(report["individual"], expected["individual"])
        assert_figures(report["ceiling"], expected["ceiling"])
        assert_figures(report["consensus"], consensus_reference(db, project, scores))

    def test_side_by_side_and_replace_and_delete(self, client, db, seed, staff, bearer):
        project, _ = ranking_project(seed, prompts=6)
        headers = bearer(staff)
        first, scores = score_file(seed, project)
        second, _ = score_file(seed, project, rng_seed=9, skip_every=1000)
        assert upload(client, project, headers, first, name="rm-a").status_code == 201
        assert upload(client, project, headers, second, name="rm-b").status_code == 201
        again = upload(client, project, headers, first, name="rm-b")
        assert again.status_code == 409 and "replace=true" in again.json()["detail"]
        listing = client.get(URL.format(project.id), headers=headers).json()
        assert [r["name"] for r in listing["reward_models"]] == ["rm-a", "rm-b"]
        single = client.get(f"{URL.format(project.id)}/rm-a", headers=headers).json()
        assert single["computed_at"] and not single["stale"]  # served through the report cache
        assert listing["reward_models"][0] == single | {"computed_at": None, "stale": False}  # inside the cached list
        assert listing["reward_models"][0]["scored_responses"] != listing["reward_models"][1]["scored_responses"]
        replaced = upload(client, project, headers, first, name="rm-b", replace="true")
        assert replaced.status_code == 201 and replaced.json()["replaced"] is True
        # The cached list is recomputed after the upload: rm-b now holds rm-a's scores.
        after = client.get(URL.format(project.id), headers=headers).json()["reward_models"]
        assert after[1]["scored_responses"] == after[0]["scored_responses"] == single["scored_responses"]
        db.rollback()
        rm_b = db.scalar(select(RewardModel.id).where(RewardModel.name == "rm-b"))
        stored = select(RewardModelScore.response_id, RewardModelScore.score).where(RewardModelScore.reward_model_id == rm_b)
        assert dict(db.execute(stored).all()) == scores
        assert client.delete(f"{URL.format(project.id)}/rm-b", headers=headers).status_code == 204
        assert client.get(f"{URL.format(project.id)}/rm-b", headers=headers).status_code == 404
        db.rollback()
        assert db.scalar(select(RewardModelScore).where(RewardModelScore.reward_model_id == rm_b)) is None

    def test_no_labels_gives_empty_figures(self, client, seed, staff, bearer):
        project = seed.project([{"id": "a", "prompt": "p", "responses": [{"text": "x"}, {"text": "y"}]}], kind="ranking")
        headers = bearer(staff)
        assert upload(client, project, headers, b'{"prompt_id": "a", "response": 0, "score": 1}').status_code == 201
        report = client.get(f"{URL.format(project.id)}/rm-v3", headers=headers).json()
        assert report["decisions"] == 0 and report["individual"]["tie_half"] == {"value": None, "n": 0} and report["ece"] is None


class TestUploadErrors:
    @pytest.mark.parametrize(
        ("content", "messages"),
        [
            (b'{"prompt_id": "q1", "response": 0, "score": 1}\n{"prompt_id": "nope", "response": 0, "score": 2}',
             ['line 2, field "prompt_id": no prompt with id \'nope\' in this project']),
            (b'{"prompt_id": "q1", "response": 9, "score": 1}', ['line 1, field "response": the prompt has 4 responses (index 0–3), got 9']),
            (b'{"prompt_id": "q1", "response": "no such text", "score": 1}', ['line 1, field "response": no response of this prompt has this text']),
            (b'{"prompt_id": "q1", "response": 0, "score": "high"}', ['line 1, field "score": must be a number, got a string']),
            (b'{"prompt_id": "q1", "response": 0}', ['line 1, field "score": is required']),
            (b'{"prompt_id": "q1", "response": 0, "score": NaN}', ["line 1: not valid JSON"]),
            (b'{"prompt_id": "q1", "response": 0, "score": 1}\n\n{"prompt_id": "q1", "response": "r1-0", "score": 2}',
             ['line 3, field "score": scores response', 'line 1 (field "score") gave it 1']),
            (b'{"prompt_id": "q1", "response": 0, "score": 1, "colour": 1}', ['line 1, field "colour": unknown key']),
            (b'{"prompt": "prompt 1", "chosen": "r1-0", "rejected": "zzz", "score_chosen": 1, "score_rejected": 0}',
             ['line 1, field "prompt": no prompt of this project has this content and these two responses']),
            (b"", ["the file is empty"]),
        ],
    )  # fmt: skip
    def test_errors_name_the_line_and_nothing_is_stored(self, client, db, seed, staff, bearer, content, messages):
        project, _ = ranking_project(seed, prompts=3)
        response = upload(client, project, bearer(staff), content)
        assert response.status_code == 422, response.text
        text = " ".join(response.json()["errors"])
        assert all(m in text for m in messages), text
        db.rollback()
        assert db.scalar(select(RewardModel)) is None

    def test_errors_come_in_line_order(self, client, seed, staff, bearer):
        """A row naming an unknown prompt (found when resolving) and a malformed row after it (found when parsing)."""
        project, _ = ranking_project(seed, prompts=2)
        content = b'{"prompt_id": "nope", "response": 0, "score": 1}\n{"prompt_id": "q1", "score": "high"}'
        errors = upload(client, project, bearer(staff), content).json()["errors"]
        assert [e.split(",")[0] for e in errors] == ["line 1", "line 2", "line 2"], errors

    def test_deep_nesting_is_refused_by_line(self, client, db, seed, staff, bearer):
        project, _ = ranking_project(seed, prompts=2)
        deep = b'{"prompt_id": "q1", "response": ' + b"[" * 30_000 + b"]" * 30_000 + b', "score": 1}'
        response = upload(client, project, bearer(staff), b'{"prompt_id": "q1", "response": 0, "score": 1}\n' + deep)
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0].startswith("line 2"), response.json()
        db.rollback()
        assert db.scalar(select(RewardModel)) is None

    def test_ambiguous_trl_match_and_bad_name(self, client, seed, staff, bearer):
        rows = [{"id": f"p{i}", "prompt": "same", "responses": [{"text": "a"}, {"text": "b"}]} for i in range(2)]
        project = seed.project(rows, kind="pairwise")
        headers = bearer(staff)
        line = b'{"prompt": "same", "chosen": "a", "rejected": "b", "score_chosen": 1, "score_rejected": 0}'
        response = upload(client, project, headers, line)
        assert response.status_code == 422 and "ambiguous: 2 prompts" in " ".join(response.json()["errors"])
        bad = upload(client, project, headers, line, name="../x")
        assert bad.status_code == 422 and "name:" in bad.json()["detail"]

    def test_permissions(self, client, seed, make_user, bearer, staff):
        project, _ = ranking_project(seed, prompts=2)
        content, _ = score_file(seed, project)
        assert upload(client, project, bearer(staff), content).status_code == 201
        member = make_user(Role.annotator)
        seed.db.commit()
        projects.add_member(session=seed.db, project=project, user=member)
        seed.db.commit()
        base = URL.format(project.id)
        for path in (base, f"{base}/rm-v3"):
            assert client.get(path).status_code == 401
            assert client.get(path, headers=bearer(member)).status_code == 403
            assert client.get(path, headers=bearer(make_user(Role.annotator))).status_code == 404
            assert client.get(path, headers=bearer(make_user(Role.admin))).status_code == 200
        assert upload(client, project, {}, content, name="x").status_code == 401
        assert upload(client, project, bearer(member), content, name="x").status_code == 403
        assert client.delete(f"{base}/rm-v3", headers=bearer(member)).status_code == 403
        assert client.delete(f"{base}/rm-v3").status_code == 401
        assert client.get(f"{base}/nope", headers=bearer(staff)).status_code == 404
        assert client.get(f"{base}/rm-v3", params={"consensus": "vote"}, headers=bearer(staff)).status_code == 422


class TestPages:
    def test_list_and_report_pages(self, login_as, seed, staff, make_user):
        project, _ = ranking_project(seed, prompts=8)
        content, _ = score_file(seed, project)
        browser = login_as(staff)
        page = browser.get(f"/projects/{project.id}/reward-models")
        assert page.status_code == 200 and 'id="rm-empty"' in page.text
        stored = browser.post(
            f"/projects/{project.id}/reward-models", data={"name": "rm-v3"}, files={"file": ("s.jsonl", content)}
        )
        assert stored.status_code == 200 and "Stored" in stored.text and 'data-rm="rm-v3"' in stored.text
        bad = browser.post(f"/projects/{project.id}/reward-models", data={"name": "rm-x"}, files={"file": ("s.jsonl", b"{}")})
        assert bad.status_code == 422 and "Nothing was stored" in bad.text
        report = browser.get(f"/projects/{project.id}/reward-models/rm-v3")
        assert report.status_code == 200 and report.template.name == "rewardmodels/report.html"
        assert 'aria-label="Calibration: human preference rate against predicted preference"' in report.text
        assert "human ceiling" in report.text and "InstructGPT" in report.text
        assert "<script" not in report.text.split("</header>")[1]
        assert 'id="reward-models-link"' in browser.get(f"/projects/{project.id}").text
        deleted = browser.post(f"/projects/{project.id}/reward-models/rm-v3/delete", follow_redirects=False)
        assert deleted.status_code == 303
        member = make_user(Role.annotator)
        seed.db.commit()
        projects.add_member(session=seed.db, project=project, user=member)
        seed.db.commit()
        assert login_as(member).get(f"/projects/{project.id}/reward-models").status_code == 403


def test_cli_upload_and_eval(seed, db, tmp_path):
    project, _ = ranking_project(seed, prompts=6)
    content, scores = score_file(seed, project)
    path = tmp_path / "scores.jsonl"
    path.write_bytes(content)
    out = preflab("rm-upload", project.name, "rm-v3", str(path)).stdout
    assert f"stored {len(scores)} scores" in out
    again = preflab("rm-upload", project.name, "rm-v3", str(path), check=False)
    assert again.returncode == 1 and "replace" in again.stderr
    report = preflab("rm-eval", project.name, "rm-v3").stdout
    expected, *_ = brute_force(db, project, scores)
    value, _ = mean_or_none(expected["individual"]["tie_half"])
    assert f"{value * 100:.1f}" in report and "human ceiling" in report
    assert "rm-v3" in preflab("rm-eval", project.name).stdout


def test_demo_seeds_an_informative_reward_model(client, db, staff, bearer):
    from app import demo

    for _ in demo.create(db):
        pass
    db.commit()
    assert any("already there" in line for line in demo.create(db))  # idempotent
    db.rollback()
    project = db.scalar(select(demo.Project).where(demo.Project.name == demo.RANKING_PROJECT))
    report = client.get(f"{URL.format(project.id)}/{demo.DEMO_RM}", headers=bearer(staff)).json()
    assert report["scored"] == report["decisions"] > 0
    assert 0.55 < report["individual"]["tie_half"]["value"] < 0.95  # noisy but informative
    assert report["ceiling"]["tie_half"]["n"] > 0 and report["ece"] is not None


def test_every_consensus_method_agrees_with_borda_on_two_responses(client, seed, staff, bearer):
    """With two responses every method follows the majority of non-tie votes, so each equals Borda's (by hand in
    test_report_equals_the_brute_force_count): this exercises the prompt-by-prompt path of the other methods."""
    rows = [{"id": f"p{i}", "prompt": f"q{i}", "responses": [{"text": "a"}, {"text": "b"}]} for i in range(6)]
    project = seed.project(rows, kind="pairwise", allow_ties=True)
    people = seed.annotators(3)
    for i in range(6):
        for j, person in enumerate(people):
            seed.label(project, f"p{i}", person, [[0, 1]] if (i + j) % 3 == 0 else ([[0], [1]] if i % 2 else [[1], [0]]))
    content = b"\n".join(
        orjson.dumps({"prompt_id": f"p{i}", "response": k, "score": (i + k) % 3}) for i in range(6) for k in (0, 1)
    )
    headers = bearer(staff)
    assert upload(client, project, headers, content).status_code == 201
    figures = {
        method: client.get(f"{URL.format(project.id)}/rm-v3", params={"consensus": method}, headers=headers).json()["consensus"]
        for method in ("borda", "majority", "ranked_pairs", "bradley_terry", "plackett_luce")
    }
    assert all(f == figures["borda"] for f in figures.values()), figures
