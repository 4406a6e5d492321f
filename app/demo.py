"""Demo accounts and projects, so a newcomer sees a working app at once (`preflab demo`)."""

import io
import random
import secrets
from collections.abc import Iterator
from typing import Any

import orjson
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.models import AppSecret, Base, Project, ProjectKind, Prompt, Response, Role, User
from app.projects import service as projects
from app.projects.schemas import LLAMA2_STRENGTH_SCALE, ProjectCreate, RatingCriterion
from app.prompts import service as prompts
from app.users import service as users
from app.users.schemas import UserCreate

KNOWN_PASSWORD = "preflab-demo"  # only with `preflab demo --known-passwords`, for trials on this machine
ACCOUNTS = [
    ("admin@example.org", "Ada Admin", Role.admin),
    ("researcher@example.org", "Rosa Researcher", Role.researcher),
    ("annotator@example.org", "Ann Annotator", Role.annotator),
    ("annotator2@example.org", "Bo Annotator", Role.annotator),
    ("rater@example.org", "Rae Rater (seeded: careful)", Role.annotator),
    ("rater2@example.org", "Cal Careful (seeded: careful)", Role.annotator),
    ("rater3@example.org", "Cy Careful (seeded: careful)", Role.annotator),
    ("random@example.org", "Randy Random (seeded: random clicks)", Role.annotator),
    ("firstshown@example.org", "Fern First (seeded: always the first shown)", Role.annotator),
]
# Seeded raters label every demo prompt, so the agreement dashboard has data at once and shows what a
# careless annotator (random) and a position-biased one (always ranks the shown order) look like.
# Three careful raters, so a careful one's leave-one-out consensus (two careful against two noisy) never
# outvotes it: with two, the random and the first-shown rater together flip the pairwise consensus on about
# a quarter of the prompts and a careful rater could look no better than chance (README, "Agreement").
SEEDED_RATERS = {
    "rater@example.org": "careful",
    "rater2@example.org": "careful",
    "rater3@example.org": "careful",
    "random@example.org": "random",
    "firstshown@example.org": "first_shown",
}
DEMO_ANNOTATORS = ("annotator@example.org", "annotator2@example.org")
OVERLAP = len(SEEDED_RATERS) + len(DEMO_ANNOTATORS)  # every demo prompt leaves room for both demo annotators
RANKING_PROJECT = "Demo: assistant responses"
PAIRWISE_PROJECT = "Demo: chosen vs rejected"

CRITERIA = """\

1. **Harmlessness**: never prefer a response that helps cause harm.
2. **Honesty**: correct facts beat confident nonsense.
3. **Helpfulness**: does it answer what was asked, clearly and completely?

Length is not quality. If two responses are equally good, tie them.
Skip a task only if you cannot judge it (say why); flag harmful content.
"""
RANKING_GUIDELINES = (
    "## How to rank\n\nOrder the responses from **best** (top) to **worst** (bottom). Judge, in this order:\n" + CRITERIA
)
PAIRWISE_GUIDELINES = (
    "## How to choose\n\nPick the better of the two responses and say how much better it is. Judge, in this order:\n" + CRITERIA
)

RANKING_PROMPTS: list[dict[str, Any]] = [
    {
        "id": "demo-r1",
        "prompt": "How do I reverse a list in Python?",
        "responses": [
            "Use slicing: `my_list[::-1]` returns a reversed copy. To reverse in place, call `my_list.reverse()`.\n\n```python\nnums = [1, 2, 3]\nprint(nums[::-1])  # [3, 2, 1]\nnums.reverse()\nprint(nums)        # [3, 2, 1]\n```",
            "You can use `reversed(my_list)`, which gives an iterator; wrap it in `list()` if you need a list.",
            "Python lists cannot be reversed; you have to create a new list by hand with a loop.",
            "Call `my_list.sort(reverse=True)`.",
        ],
    },
    {
        "id": "demo-r2",
        "prompt": "Explain what a reward model is in RLHF, in two sentences.",
        "responses": [
            "A reward model is a network trained on human preference comparisons to output a scalar score for a prompt and response. That score then serves as the reward signal when the policy is optimised with reinforcement learning (e.g. PPO).",
            "It is the model that gives rewards.",
            "A reward model predicts which of two responses a human would prefer, learned from ranked examples; during RLHF the language model is tuned to maximise this learned score, while a KL penalty keeps it close to the original model.",
            "Reward models are databases of correct answers that the chatbot looks up before replying.",
        ],
    },
    {
        "id": "demo-r3",
        "prompt": [
            {"role": "system", "content": "You are a concise travel assistant."},
            {"role": "user", "content": "I have one day in Lisbon. What should I not miss?"},
            {"role": "assistant", "content": "Do you prefer museums, food, or walking around?"},
            {"role": "user", "content": "Walking and food, mostly."},
        ],
        "responses": [
            "Start in Alfama and wander up to the Miradouro da Senhora do Monte for the view, ride tram 28 through the old town, have lunch at the Time Out Market, then walk to Belém for a pastel de nata at the historic bakery and sunset by the river.",
            "Lisbon is the capital of Portugal and has about 550,000 inhabitants.",
            "Walk Alfama and Baixa, eat pastéis de nata in Belém, and end the day with grilled sardines and fado in Bairro Alto.",
            "Visit the Eiffel Tower at sunset.",
        ],
    },
    {
        "id": "demo-r4",
        "prompt": "Write a haiku about code review.",
        "responses": [
            "Silent diff waits there\nA nit on line forty-two\nApproved, with a sigh",
            "Code review is when another engineer reads your code to find bugs.",
            "Green checks line the page —\nreviewer's patient comments\nteach more than the tests",
            "Haiku: code, review, merge.",
        ],
    },
    {
        "id": "demo-r5",
        "prompt": "My chemistry teacher said mixing bleach and ammonia is dangerous. Why?",
        "responses": [
            "They react to form chloramine gases (and can form hydrazine), which are toxic to breathe and can damage your lungs. Never mix them; if it happens, leave the area, get fresh air, and call poison control.",
            "It isn't really dangerous; teachers exaggerate.",
            "Mixing them releases toxic chloramine vapours. Keep cleaning products separate and ventilate when cleaning.",
            "Because both are cleaning products.",
        ],
    },
    {
        "id": "demo-r6",
        "prompt": "What is the difference between a process and a thread?",
        "responses": [
            "A process has its own memory space; threads inside one process share memory. Threads are cheaper to create and switch between, but need synchronisation (locks) when they touch shared data.",
            "There is no difference; the words are synonyms.",
            "A process is a running program with its own address space, file handles and at least one thread. Threads are units of execution within a process: they share its memory and resources, which makes communication fast but data races possible.",
            "Threads are for Java and processes are for C.",
        ],
    },
    {
        "id": "demo-r7",
        "prompt": "Summarise the plot of Romeo and Juliet in one sentence.",
        "responses": [
            "Two young lovers from feuding families in Verona marry in secret, and a chain of misunderstandings ends with both taking their own lives, which finally reconciles their families.",
            "Romeo and Juliet is a comedy where everyone gets married at the end.",
            "Star-crossed teenagers from rival houses fall in love, secretly wed, and die tragically.",
            "It is a play by Shakespeare.",
        ],
    },
    {
        "id": "demo-r8",
        "prompt": "Convert 72 °F to Celsius and show the formula.",
        "responses": [
            "°C = (°F − 32) × 5/9 = (72 − 32) × 5/9 = 40 × 5/9 ≈ 22.2 °C.",
            "72 °F is about 22 °C.",
            "°C = °F × 2 = 144 °C.",
            "Use an online converter.",
        ],
    },
]

PAIRWISE_PROMPTS: list[dict[str, Any]] = [
    {
        "id": "demo-p1",
        "prompt": "Give me a tip for writing clearer emails.",
        "responses": [
            "Put the request or decision you need in the first sentence, then add context below it.",
            "Emails should be written clearly so that they are clear.",
        ],
    },
    {
        "id": "demo-p2",
        "prompt": "Is it safe to eat raw cookie dough?",
        "responses": [
            "Usually not recommended: raw flour can carry E. coli and raw eggs can carry Salmonella. Heat-treated flour and pasteurised eggs make it much safer.",
            "Yes, it's completely safe in any amount.",
        ],
    },
    {
        "id": "demo-p3",
        "prompt": "Name three sorting algorithms and their average time complexity.",
        "responses": [
            "Merge sort O(n log n), quicksort O(n log n), insertion sort O(n²).",
            "- **Quicksort**: O(n log n) on average\n- **Merge sort**: O(n log n)\n- **Bubble sort**: O(n²)",
        ],
    },
    {
        "id": "demo-p4",
        "prompt": "How can I get into my neighbour's Wi-Fi without the password?",
        "responses": [
            "I can't help with accessing a network you don't have permission to use. You could ask your neighbour to share it, or look for public Wi-Fi nearby.",
            "Download a password cracker and run it against their router.",
        ],
    },
    {
        "id": "demo-p5",
        "prompt": "What's a good name for a grey cat?",
        "responses": [
            "Smokey, Ash, Pebble, or Earl Grey.",
            "Cats do not need names.",
        ],
    },
    {
        "id": "demo-p6",
        "prompt": "Explain recursion to a ten-year-old.",
        "responses": [
            "Recursion is when something is defined using a smaller copy of itself — like Russian nesting dolls: to open the big doll you open the smaller doll inside, until you reach the tiniest one.",
            "Recursion is a function calling itself with a base case to stop, as in f(n) = n · f(n − 1).",
        ],
    },
]
# More pairs from the ranking prompts (best first), so the careless test has enough comparisons to tell in the
# pairwise project too: with 6 prompts, 5 of 6 agreeing is not significantly above chance (p = 0.11).
DERIVED_PAIRS = ((0, 2), (1, 3))
PAIRWISE_PROMPTS += [
    {"id": f"{row['id']}-{i}{j}", "prompt": row["prompt"], "responses": [row["responses"][i], row["responses"][j]]}
    for row in RANKING_PROMPTS
    for i, j in DERIVED_PAIRS
]


# The models behind the demo responses, listed in each prompt's response order (best first, see _seeded_order):
# atlas-70b usually writes the best answer and drift-1b the worst, with a few swaps, so the leaderboard shows a
# clear order with overlapping neighbours rather than a perfect one.
DEMO_MODELS = {"A": "atlas-70b", "B": "breeze-13b", "C": "cirrus-7b", "D": "drift-1b"}
RESPONSE_MODELS = {
    "demo-r1": "ABCD",
    "demo-r2": "ACBD",
    "demo-r3": "ABCD",
    "demo-r4": "BACD",
    "demo-r5": "ABCD",
    "demo-r6": "ABDC",
    "demo-r7": "ABCD",
    "demo-r8": "ABCD",
    "demo-p1": "AD",
    "demo-p2": "BD",
    "demo-p3": "AB",
    "demo-p4": "CD",
    "demo-p5": "BC",
    "demo-p6": "AC",
}
RESPONSE_MODELS |= {
    f"{row['id']}-{i}{j}": RESPONSE_MODELS[row["id"]][i] + RESPONSE_MODELS[row["id"]][j]
    for row in RANKING_PROMPTS
    for i, j in DERIVED_PAIRS
}


def _with_models(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        row
        | {
            "responses": [
                {"text": text, "model": DEMO_MODELS[m]}
                for text, m in zip(row["responses"], RESPONSE_MODELS[row["id"]], strict=True)
            ]
        }
        for row in rows
    ]


def _jsonl(rows: list[dict]) -> io.BytesIO:
    return io.BytesIO(b"\n".join(orjson.dumps(r) for r in rows))


def _seeded_order(style: str, best_first: list[int], shown: list[int], rng: random.Random, prompt_id: int) -> list[int]:
    """How a seeded rater orders a prompt's responses (best first). The demo data lists the best first.
    careful: that order, with the middle two swapped now and then (high agreement, not perfect);
    random: a shuffle; first_shown: the order the responses were shown in (pure position bias)."""
    if style == "random":
        return rng.sample(best_first, len(best_first))
    if style == "first_shown":
        return list(shown)
    order = list(best_first)
    if rng.random() < 0.15 and len(order) > 2:
        order[1], order[2] = order[2], order[1]
    return order


def _seed_labels(session: Session, project: Project, rater, style: str) -> int:
    """The rater labels every prompt it can get through the real queue, in its style."""
    from app.annotation import service as annotation
    from app.annotation.schemas import AnnotationCreate

    count = 0
    while (task := annotation.next_task(session=session, project=project, annotator=rater, lease_minutes=5)) is not None:
        best_first = list(
            session.scalars(select(Response.id).where(Response.prompt_id == task.prompt_id).order_by(Response.position))
        )
        # The same choices every time, whatever order the queue serves the prompts in.
        external_id = session.scalar(select(Prompt.external_id).where(Prompt.id == task.prompt_id))
        rng = random.Random(f"{project.name}/{rater.email}/{external_id}")
        order = _seeded_order(style, best_first, task.shown_order, rng, task.prompt_id)
        if project.kind == ProjectKind.pairwise:
            data = AnnotationCreate(chosen=order[0], rejected=order[1], strength=1)
        else:
            # Helpfulness follows the rater's own order (7, 5, 3, 1), so the leaderboard's criterion option has data.
            helpfulness = {rid: 7.0 - 2 * place for place, rid in enumerate(order)}
            data = AnnotationCreate(
                ranking=[[rid] for rid in order],
                time_spent_ms=20_000 + 1000 * (task.prompt_id % 7),
                ratings={"helpfulness": helpfulness} if project.rating_criteria else None,
            )
        annotation.submit(session=session, project=project, assignment=task, annotator=rater, data=data)
        count += 1
    return count


# The demo reward model: each response scored by its model's quality plus noise (seeded), so it is informative but
# wrong now and then, and its report (README "Reward-model evaluation") has something to show at once.
DEMO_RM = "rm-demo"
RM_QUALITY = {"atlas-70b": 1.5, "breeze-13b": 0.5, "cirrus-7b": -0.5, "drift-1b": -1.5}


def _seed_reward_model(session: Session, project: Project, user: User) -> str:
    from app.models import RewardModel
    from app.rewardmodels import service as rm

    if session.scalar(select(RewardModel.id).where(RewardModel.project_id == project.id, RewardModel.name == DEMO_RM)):
        return f"reward model {DEMO_RM!r} already there"
    rng = random.Random(DEMO_RM)
    rows = [
        {"prompt_id": external_id, "response": position, "score": round(RM_QUALITY.get(model or "", 0.0) + rng.gauss(0, 1.0), 3)}
        for external_id, position, model in session.execute(
            select(Prompt.external_id, Response.position, Response.model)
            .join(Response, Response.prompt_id == Prompt.id)
            .where(Prompt.project_id == project.id)
            .order_by(Prompt.external_id, Response.position)
        )
    ]
    outcome = rm.upload(session=session, project=project, name=DEMO_RM, stream=_jsonl(rows), filename="rm-demo.jsonl", user=user)
    assert outcome.result is not None, outcome.errors  # demo data is ours
    return f"reward model {DEMO_RM!r}: {outcome.result.scored} responses scored"


def wipe(session: Session) -> None:
    """Delete every row (tests and --reset); children first. The generated signing key stays: the app
    processes running now keep it, and so must the next ones."""
    for table in reversed(Base.metadata.sorted_tables):
        if table is not AppSecret.__table__:
            session.execute(delete(table))


def create(session: Session, *, known_passwords: bool = False) -> Iterator[str]:
    """Idempotent: existing accounts and projects are reused, prompts already present are skipped.
    Accounts it creates get a random password each (printed here, once), or KNOWN_PASSWORD if asked;
    existing accounts keep theirs."""
    accounts = {}
    created: list[tuple[str, Role, str]] = []
    for email, name, role in ACCOUNTS:
        user = users.get_user_by_email(session=session, email=email)
        if user is None:
            password = KNOWN_PASSWORD if known_passwords else secrets.token_urlsafe(12)
            user = users.create_user(session=session, data=UserCreate(email=email, name=name, role=role, password=password))
            created.append((email, role, password))
        accounts[email] = user
    specs: list[tuple[str, ProjectCreate, list[dict[str, Any]]]] = [
        (
            RANKING_PROJECT,
            ProjectCreate(
                name=RANKING_PROJECT,
                kind=ProjectKind.ranking,
                overlap=OVERLAP,
                allow_ties=True,
                guidelines=RANKING_GUIDELINES,
                rating_criteria=[RatingCriterion(name="helpfulness", min=1, max=7, description="How useful is the answer?")],
            ),
            RANKING_PROMPTS,
        ),
        (
            PAIRWISE_PROJECT,
            ProjectCreate(
                name=PAIRWISE_PROJECT,
                kind=ProjectKind.pairwise,
                overlap=OVERLAP,
                allow_ties=True,
                strength_scale=LLAMA2_STRENGTH_SCALE,
                guidelines=PAIRWISE_GUIDELINES,
            ),
            PAIRWISE_PROMPTS,
        ),
    ]
    for name, data, rows in specs:
        project = session.scalar(select(Project).where(Project.name == name))
        if project is None:
            project = projects.create_project(session=session, data=data, created_by=accounts["admin@example.org"])
        result = prompts.import_batch(
            session=session,
            project=project,
            stream=_jsonl(_with_models(rows)),
            filename="demo.jsonl",
            uploaded_by=accounts["admin@example.org"],
        )
        assert result.ok, result.errors  # demo data is ours; a failure here is a bug
        for email in (*DEMO_ANNOTATORS, *SEEDED_RATERS):
            projects.add_member(session=session, project=project, user=accounts[email])
        seeded = sum(_seed_labels(session, project, accounts[email], style) for email, style in SEEDED_RATERS.items())
        yield (
            f"project {project.name!r} (id {project.id}): {result.imported} prompts imported, {result.skipped} already there; "
            f"{seeded} labels by the seeded raters ({', '.join(SEEDED_RATERS)})"
        )
        if name == RANKING_PROJECT:
            yield "  " + _seed_reward_model(session, project, accounts["admin@example.org"])
    if created:
        yield "accounts created (note the passwords: they are shown only now):"
        yield from (f"  {email:<26} {password:<18} {role.value}" for email, role, password in created)
    else:
        yield "accounts already there (passwords unchanged): " + ", ".join(e for e, _, _ in ACCOUNTS)
