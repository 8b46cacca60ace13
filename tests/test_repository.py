"""One repository URL: scripts/set_repository.py writes it everywhere from _config.yml's repository.url."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
NEW = "https://github.com/Someone-Else/tlrl-fork"
spec = importlib.util.spec_from_file_location("set_repository", REPO / "scripts" / "set_repository.py")
set_repository = importlib.util.module_from_spec(spec)
spec.loader.exec_module(set_repository)


def config_url(root: Path) -> str:
    return yaml.safe_load((root / "_config.yml").read_text())["repository"]["url"]


def run_script(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(root / "scripts" / "set_repository.py"), *args],
                          capture_output=True, text=True, cwd=root)


def copy_of_the_repository(dst: Path) -> Path:
    """The files git tracks or would track (the working tree as committed plus new files)."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, check=True,
                            capture_output=True, text=True).stdout.split("\0")
    for name in filter(None, listed):
        if (REPO / name).is_file():
            (dst / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(REPO / name, dst / name)
    return dst


def texts(root: Path):
    for path in root.rglob("*"):
        if path.is_file() and "tests" not in path.relative_to(root).parts:  # tests read _config.yml
            try:
                yield path, path.read_text()
            except UnicodeDecodeError:
                continue


def test_one_call_rewrites_every_url(tmp_path: Path) -> None:
    old = config_url(REPO)
    old_owner, _ = set_repository.github_parts(old)
    root = copy_of_the_repository(tmp_path)
    result = run_script(root, NEW)
    assert result.returncode == 0, result.stderr
    assert config_url(root) == NEW
    left = [str(path.relative_to(root)) for path, text in texts(root) if old_owner in text]
    assert left == [], f"still naming {old_owner}: {left}"
    readme = (root / "README.md").read_text()
    assert "(https://someone-else.github.io/tlrl-fork/)" in readme
    colab = "https://colab.research.google.com/github/Someone-Else/tlrl-fork/blob/main/notebooks/01_data.ipynb"
    assert f"({colab})" in readme
    assert f'REPOSITORY = "{NEW}"' in (root / "tlrl" / "download.py").read_text()
    assert f'Homepage = "{NEW}"' in (root / "pyproject.toml").read_text()
    notebooks = sorted((root / "notebooks").glob("*.ipynb"))
    assert len(notebooks) >= 8
    for path in notebooks:
        cell = next(c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
        assert cell.source == set_repository.colab_cell(NEW, path.name), path.name
    assert run_script(root, "--check").returncode == 0
    assert run_script(root, "https://gitlab.com/a/b").stderr.strip() == (
        "set_repository: 'https://gitlab.com/a/b' is not https://github.com/OWNER/NAME"
    )


def test_only_the_automl_chapters_install_the_automl_extra() -> None:
    notebooks = sorted(p.name for p in (REPO / "notebooks").glob("*.ipynb"))
    assert set(set_repository.AUTOML_NOTEBOOKS) <= set(notebooks)
    for name in notebooks:
        cell = set_repository.colab_cell(NEW, name)
        compile(cell, "colab-cell", "exec")
        spec = "tlrl[automl]" if name in ("03_scratch_baselines.ipynb", "08_benchmark.ipynb") else "tlrl"
        assert f'f"{spec} @ git+{{REPOSITORY}}"' in cell and f'REPOSITORY = "{NEW}"' in cell, name
        assert 'os.environ["TLRL_RESULTS_DIR"] = "/content/tlrl_results"' in cell
        assert "torch.cuda.get_device_name(0)" in cell and "jupyter-book" not in cell


class _Dist:
    def __init__(self, name: str, version: str) -> None:
        self.metadata, self.version = {"Name": name}, version


@pytest.mark.parametrize(("after", "restart"), [
    ({"numpy": "2.2.6", "hyperopt": "0.2.7"}, "numpy changed after being imported"),  # numpy is imported here
    ({"numpy": "2.4.0", "hyperopt": "0.2.7", "tlrl-never-imported": "2.0"}, None),  # only unimported ones changed
])
def test_the_colab_cell_lists_every_change_and_asks_for_a_restart_when_an_imported_one_changed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, after: dict, restart: str | None
) -> None:
    import importlib.metadata
    import subprocess

    import numpy  # noqa: F401  (imported before pip, as on Colab)

    before = {"numpy": "2.4.0", "tlrl-never-imported": "1.0"}
    state = {"installed": before}
    calls = []

    def pip(cmd, check):
        calls.append(cmd)
        state["installed"] = after

    monkeypatch.setitem(sys.modules, "google.colab", object())
    monkeypatch.setattr(subprocess, "run", pip)
    owners = importlib.metadata.packages_distributions()  # the real modules -> distributions
    monkeypatch.setattr(importlib.metadata, "packages_distributions", lambda: owners)
    monkeypatch.setattr(importlib.metadata, "distributions", lambda: [_Dist(*kv) for kv in state["installed"].items()])
    monkeypatch.setenv("TLRL_RESULTS_DIR", "unset")
    exec(set_repository.colab_cell(NEW, "01_data.ipynb"), {})
    out = capsys.readouterr().out
    assert calls == [[sys.executable, "-m", "pip", "install", "-q", f"tlrl @ git+{NEW}"]]
    changed = [f"pip changed {n}: {v} -> {after.get(n, 'removed')}" for n, v in before.items() if after.get(n) != v]
    assert [line for line in out.splitlines() if line.startswith("pip changed")] == changed
    assert (restart in out) if restart else ("Restart session" not in out)


@pytest.mark.parametrize(("url", "pages"), [
    ("https://github.com/tlrl-book/tlrl", "https://tlrl-book.github.io/tlrl/"),
    ("https://github.com/Me/me.github.io", "https://me.github.io/"),
])
def test_pages_url(url: str, pages: str) -> None:
    assert set_repository.pages_url(url) == pages


def test_committed_files_agree_with_the_config() -> None:
    result = run_script(REPO, "--check")
    assert result.returncode == 0, result.stderr
