"""Mutation testing of the queue, the agreement metrics, consensus and export pair/row building.

    .venv/bin/python scripts/mutation.py [queue|metrics|consensus|export ...]   (default: all four)

Each module runs in its own copy of the tree, .mutation/<module>/ (git-ignored), with that module's
fast tests: mutmut reads one [tool.mutmut] from pyproject.toml, so the copy gets the shared settings
with only_mutate and the test selection replaced. mutmut runs one child (the machine is shared).
Afterwards `cd .mutation/<module> && ../../.venv/bin/mutmut show NAME` shows a mutant.

The tests run on SQLite. TEST_DATABASE_URL (as for pytest) runs them on PostgreSQL instead; with --survivors that
tests the last SQLite run's survivors there, for the branches only PostgreSQL takes (row locks, SKIP LOCKED). The
database must be one of its own (the tests drop its schema):

    TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/DBNAME .venv/bin/python scripts/mutation.py --survivors queue

The score is killed / (mutants in scope - equivalent ones); "no tests" counts as survived.
scripts/mutation_equivalent.txt lists the equivalent mutants (TESTING.md says why for each).
"""

import argparse
import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MUTMUT = Path(sys.executable).parent / "mutmut"


@dataclass(frozen=True)
class Module:
    files: list[str]
    tests: list[str]  # pytest arguments selecting the module's fast tests
    scope: str = ""  # regex over mutant names: only these count in the score (all if empty)
    notes: list[str] = field(default_factory=list)


# Export rows: the pure pair/row building counts; the queries (iter_groups, iter_rows, ...) are
# reached only through the database and belong to the export tests, not to this score.
_ROW_BUILDING = r"^app\.export\.pairs\.|^app\.export\.rows\.(xǁRowBuilderǁ|x_prefers__|xprompt_text__|xsplit_of__|x_iso__)"

# The agreement tests that need no database (the others cost a migration per mutant).
_PURE_AGREEMENT_TESTS = [
    "tests/agreement",
    "--ignore=tests/agreement/test_agreement_app.py",
    "--ignore=tests/agreement/test_reference_agreement.py",
]

MODULES = {
    "queue": Module(["app/annotation/service.py"], ["tests/annotation"]),
    "metrics": Module(["app/agreement/metrics.py"], _PURE_AGREEMENT_TESTS),
    "consensus": Module(["app/agreement/consensus.py"], _PURE_AGREEMENT_TESTS),
    "export": Module(
        ["app/export/pairs.py", "app/export/rows.py"],
        ["tests/export", "--ignore=tests/export/test_export_http_cli.py"],  # the CLI tests start processes
        scope=_ROW_BUILDING,
    ),
}

KILLED = {"killed", "timeout", "caught by type check"}


def equivalent_mutants() -> set[str]:
    path = ROOT / "scripts" / "mutation_equivalent.txt"
    names = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return {name for name in names if name}


def copy_tree(work: Path) -> None:
    """The tracked and new (not ignored) files, as they are in the working tree now."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True, capture_output=True
    ).stdout
    work.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["rsync", "-a", "--delete", "--ignore-missing-args", "--from0", "--files-from=-", ".", str(work)],
        cwd=ROOT,
        input=listed,
        check=True,
    )


def configure(work: Path, module: Module) -> None:
    pyproject = work / "pyproject.toml"
    text = pyproject.read_text()
    for key, value in (("only_mutate", module.files), ("pytest_add_cli_args_test_selection", module.tests)):
        text, n = re.subn(rf"^{key} = .*$", f"{key} = {json.dumps(value)}", text, count=1, flags=re.M)
        assert n == 1, f"pyproject.toml: [tool.mutmut] needs a one-line {key}"
    pyproject.write_text(text)


def score(name: str, module: Module, work: Path, equivalent: set[str]) -> bool:
    status_by_code = _mutmut_statuses()
    counts = {"killed": 0, "survived": 0, "equivalent": 0, "out of scope": 0}
    survivors = []
    for file in module.files:
        meta = json.loads((work / "mutants" / f"{file}.meta").read_text())
        for mutant, code in sorted(meta["exit_code_by_key"].items()):
            status = status_by_code[code]
            if module.scope and not re.search(module.scope, mutant):
                counts["out of scope"] += 1
            elif mutant in equivalent:
                counts["equivalent"] += 1
                if status in KILLED:
                    print(f"  note: {mutant} is listed as equivalent but was killed; take it off the list")
            elif status in KILLED:
                counts["killed"] += 1
            else:
                counts["survived"] += 1
                survivors.append(f"{mutant}: {status}")
    counted = counts["killed"] + counts["survived"]
    percent = 100 * counts["killed"] / counted if counted else 100.0
    print(f"\n{name}: {' + '.join(module.files)}")
    for line in survivors:
        print(f"  survived  {line}")
    extra = f", {counts['out of scope']} out of scope" if counts["out of scope"] else ""
    print(f"{name}: {counts['killed']} / {counted} killed = {percent:.1f} % ({counts['equivalent']} equivalent excluded{extra})")
    return percent >= 90


def survivors(module: Module, work: Path) -> list[str]:
    """The last run's mutants in scope that were not killed (mutmut tests named mutants again; the tests are recopied)."""
    status_by_code = _mutmut_statuses()
    names = []
    for file in module.files:
        meta = work / "mutants" / f"{file}.meta"
        if meta.exists():
            codes = json.loads(meta.read_text())["exit_code_by_key"]
            names += [name for name, code in codes.items() if status_by_code[code] not in KILLED]
    return [name for name in names if not module.scope or re.search(module.scope, name)]  # out of scope: not worth a rerun


def _mutmut_statuses():
    from mutmut.stats import status_by_exit_code

    return status_by_exit_code


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("modules", nargs="*", help=f"any of {', '.join(MODULES)} (default: all four)")
    parser.add_argument("--score-only", action="store_true", help="print the score of the last run, run nothing")
    parser.add_argument(
        "--survivors", action="store_true", help="keep the last run and test only its survivors again (after adding tests)"
    )
    args = parser.parse_args()
    unknown = set(args.modules) - set(MODULES)
    if unknown:
        parser.error(f"unknown module {', '.join(sorted(unknown))}; choose from {', '.join(MODULES)}")
    equivalent = equivalent_mutants()
    ok = True
    for name in args.modules or list(MODULES):
        module, work = MODULES[name], ROOT / ".mutation" / name
        if not args.score_only:
            copy_tree(work)
            configure(work, module)
            again = survivors(module, work) if args.survivors else []
            if not again:
                shutil.rmtree(work / "mutants", ignore_errors=True)  # a fresh run: mutmut caches verdicts
            subprocess.run([str(MUTMUT), "run", "--max-children", "1", *again], cwd=work, check=True)
        ok = score(name, module, work, equivalent) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
