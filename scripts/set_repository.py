"""Write the repository URL everywhere it is carried, from one value: _config.yml's repository.url.

    python scripts/set_repository.py [URL] [--check]

With URL, ``repository.url`` in _config.yml becomes URL first. From that value it then writes the
notebooks' Colab cells (from the one template below; ``tlrl[automl]`` only in the AutoML chapters),
the README's badges (between the badge markers), pyproject.toml's project URLs and
``tlrl/download.py``'s REPOSITORY (where the data release lives) and ``tlrl/book.py``'s BOOK_URL (the
published book, which the chapters link to). The book's launch buttons and
repository button read _config.yml themselves.
``--check`` writes nothing and exits 1 naming each file that does not agree with _config.yml.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from string import Template
from urllib.parse import urlparse

import nbformat
import yaml

ROOT = Path(__file__).resolve().parents[1]
COLAB_MARK = '"google.colab" in sys.modules'
AUTOML_NOTEBOOKS = ("03_scratch_baselines.ipynb", "08_benchmark.ipynb")  # the chapters that run AutoML
COLAB_CELL = Template('''\
# Colab only: install $requirement from the repository, report the GPU and keep the results in
# /content/tlrl_results. Elsewhere this cell does nothing.
import os
import sys

if "google.colab" in sys.modules:
    import importlib
    import importlib.metadata
    import subprocess

    REPOSITORY = "$repository"

    def installed() -> dict:
        return {d.metadata["Name"]: d.version for d in importlib.metadata.distributions()}

    before = installed()
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", f"$requirement @ git+{REPOSITORY}"], check=True)
    importlib.invalidate_caches()  # make the freshly installed package importable in this session
    after = installed()
    changed = sorted(name for name, version in before.items() if after.get(name) != version)
    for name in changed:
        print(f"pip changed {name}: {before[name]} -> {after.get(name, 'removed')}")
    owners = importlib.metadata.packages_distributions()
    imported = {d for module in list(sys.modules) for d in owners.get(module.partition(".")[0], [])}
    if imported.intersection(changed):
        print(f"{', '.join(sorted(imported.intersection(changed)))} changed after being imported: "
              "Runtime > Restart session, then run all cells again.")
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    print(f"GPU: {gpu}" if gpu else "No GPU: choose Runtime > Change runtime type > GPU, then rerun.")
    os.environ["TLRL_RESULTS_DIR"] = "/content/tlrl_results"
    print("Results go to /content/tlrl_results (Files pane on the left); download them before the session ends.")''')


def colab_cell(url: str, notebook: str) -> str:
    """The Colab cell of ``notebook``: the AutoML chapters install ``tlrl[automl]``, the others the core."""
    return COLAB_CELL.substitute(repository=url, requirement="tlrl[automl]" if notebook in AUTOML_NOTEBOOKS else "tlrl")


BADGES = Template('''\
<!-- badges: written by scripts/set_repository.py from _config.yml's repository.url -->
[![Read the book](https://img.shields.io/badge/read-the%20book-blue)]($pages)
[![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)]\
(https://colab.research.google.com/github/$slug/blob/$branch/notebooks/01_data.ipynb)
[![CI]($repository/actions/workflows/ci.yml/badge.svg)]($repository/actions/workflows/ci.yml)
<!-- /badges -->''')
BADGES_BLOCK = re.compile(r"<!-- badges:.*?<!-- /badges -->", re.S)
CONFIG_URL = re.compile(r"(^repository:\n(?:[ \t]+.*\n)*?[ \t]+url:[ \t]*)(\S+)", re.M)


def github_parts(url: str) -> tuple[str, str]:
    """(owner, name) of an https://github.com/OWNER/NAME URL."""
    parsed = urlparse(url)
    parts = parsed.path.strip("/").removesuffix(".git").split("/")
    if parsed.scheme != "https" or parsed.netloc != "github.com" or len(parts) != 2 or not all(parts):
        sys.exit(f"set_repository: {url!r} is not https://github.com/OWNER/NAME")
    return parts[0], parts[1]


def pages_url(url: str) -> str:
    """Where GitHub Pages serves the repository's book."""
    owner, name = github_parts(url)
    host = f"{owner.lower()}.github.io"
    return f"https://{host}/" if name.lower() == host else f"https://{host}/{name}/"


def render(root: Path, url: str) -> dict[Path, str]:
    """Every file that carries the URL, as it must read for ``url``."""
    config = yaml.safe_load((root / "_config.yml").read_text())["repository"]
    owner, name = github_parts(url)
    out: dict[Path, str] = {}
    text = (root / "_config.yml").read_text()
    out[root / "_config.yml"] = CONFIG_URL.sub(lambda m: m.group(1) + url, text, count=1)
    badges = BADGES.substitute(repository=url, pages=pages_url(url), slug=f"{owner}/{name}", branch=config["branch"])
    readme = (root / "README.md").read_text()
    if not BADGES_BLOCK.search(readme):
        sys.exit("set_repository: README.md has no <!-- badges: ... --> <!-- /badges --> block")
    out[root / "README.md"] = BADGES_BLOCK.sub(lambda _: badges, readme, count=1)
    assignments = {  # file -> the lines that carry the URL, by the name they assign
        "pyproject.toml": {"Homepage": url, "Documentation": pages_url(url)},
        "tlrl/download.py": {"REPOSITORY": url},
        "tlrl/book.py": {"BOOK_URL": pages_url(url)},
    }
    for name, values in assignments.items():
        text = (root / name).read_text()
        for key, value in values.items():
            text = re.sub(rf'(?m)^{key} = "[^"]*"', lambda _, k=key, v=value: f'{k} = "{v}"', text)
        out[root / name] = text
    for path in sorted((root / "notebooks").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        cells = [c for c in nb.cells if c.cell_type == "code" and COLAB_MARK in c.source]
        if len(cells) != 1:
            sys.exit(f"set_repository: {path.name} has {len(cells)} Colab cells (code cells with {COLAB_MARK}), not 1")
        cells[0].source = colab_cell(url, path.name)
        out[path] = nbformat.writes(nb) + "\n"
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", nargs="?", help="https://github.com/OWNER/NAME; default: _config.yml's")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a file disagrees")
    args = parser.parse_args()
    url = (args.url or yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]).rstrip("/")
    github_parts(url)
    rendered = render(ROOT, url)
    changed = [path for path, text in rendered.items() if path.read_text() != text]
    if args.check:
        if changed:
            sys.exit(f"set_repository: {', '.join(str(p.relative_to(ROOT)) for p in changed)} disagree with "
                     f"_config.yml's repository.url; run: python scripts/set_repository.py")
        return
    for path in changed:
        path.write_text(rendered[path])
    print(f"repository {url}: rewrote {len(changed)} file(s)" + "".join(f"\n  {p.relative_to(ROOT)}" for p in changed))


if __name__ == "__main__":
    main()
