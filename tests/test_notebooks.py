"""The book's notebooks: committed clean, with the Colab cell and parameters the book promises,
and each one runs under the smoke profile and leaves its results in ``results_dir``."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
CHAPTERS = [
    "01_data", "02_featurization", "03_scratch_baselines", "04_source_model",
    "05_transfer_learning", "06_representation_learning", "07_tl_rl", "08_benchmark", "09_small_data",
    "10_your_own_data",
]  # fmt: skip
SLUGS = {
    "03_scratch_baselines": ["sc-ml-ef", "sc-ml-pa", "sc-dl-ef", "sc-dl-pa"],
    "05_transfer_learning": ["tl-finetune", "tl-freeze"],
    "06_representation_learning": ["rl-freezing", "rl-dl-relu", "rl-dl-dense"],
    "07_tl_rl": ["tlrl-dl-relu", "tlrl-dl-dense"],
}
SLUGS["08_benchmark"] = [slug for chapter in SLUGS.values() for slug in chapter] + ["peer-hgb-pa"]
OWN_DATA_SLUGS = ["sc-dl-ef", "tl-finetune", "tlrl-dl-relu", "peer-hgb-pa"]  # chapter 9, through the CLI
DEFAULTS = {"profile": "quick", "dataset": "jarvis_formation_energy", "data_dir": None, "source": None,
            "seed": 0, "device": None, "results_dir": None}


def read(name: str) -> nbformat.NotebookNode:
    return nbformat.read(REPO / "notebooks" / f"{name}.ipynb", as_version=4)


def code_cells(nb) -> list:
    return [c for c in nb.cells if c.cell_type == "code"]


def repository_url() -> str:
    return yaml.safe_load((REPO / "_config.yml").read_text())["repository"]["url"]


def test_the_chapters_are_the_notebooks_in_the_toc():
    on_disk = sorted(p.stem for p in (REPO / "notebooks").glob("*.ipynb"))
    toc = yaml.safe_load((REPO / "_toc.yml").read_text())
    listed = [c["file"] for part in toc["parts"] for c in part["chapters"] if c["file"].startswith("notebooks/")]
    assert on_disk == CHAPTERS
    assert listed == [f"notebooks/{name}" for name in CHAPTERS]


@pytest.mark.parametrize("name", CHAPTERS)
def test_committed_without_outputs(name):
    nb = read(name)
    nbformat.validate(nb)
    for cell in code_cells(nb):
        assert cell.outputs == [] and cell.execution_count is None, f"{name}: strip the outputs before committing"
    assert "papermill" not in nb.metadata and "widgets" not in nb.metadata
    assert nb.metadata["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("name", CHAPTERS)
def test_starts_with_a_title_then_the_colab_cell(name):
    nb = read(name)
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    colab = code_cells(nb)[0]
    assert '"google.colab" in sys.modules' in colab.source, "the first code cell must be the Colab cell"
    assert "pip" in colab.source and "torch.cuda.is_available()" in colab.source
    urls = set(re.findall(r"https?://[^\s\"'}]+", colab.source))
    assert urls == {repository_url()}, f"{name}: the Colab cell must install from _config.yml's repository.url"


@pytest.mark.parametrize("name", CHAPTERS)
def test_parameters_cell(name):
    cell = code_cells(read(name))[1]
    assert "parameters" in cell.metadata.get("tags", []), "the cell after the Colab cell must be tagged parameters"
    values = {}
    for node in ast.parse(cell.source).body:
        assert isinstance(node, ast.Assign), f"{name}: the parameters cell holds plain assignments only"
        values[node.targets[0].id] = ast.literal_eval(node.value)
    assert {k: values.get(k, "<missing>") for k in DEFAULTS} == DEFAULTS
    for line in cell.source.splitlines():  # papermill cannot document a line with a second '='
        assert line.startswith("#") or line.count("=") <= 1, line


@pytest.mark.parametrize("name", CHAPTERS)
def test_runs_under_the_smoke_profile(name, smoke_notebooks):
    run = smoke_notebooks.runs[name]
    assert run.error is None, f"{name} failed under papermill:\n{run.error}"
    results = smoke_notebooks.results_dir
    assert (results / "chapters" / f"{name}.json").is_file(), "each chapter writes its summary"
    for slug in SLUGS.get(name, []):
        run_dir = results / "runs" / slug
        for file in ("metrics.json", "test_predictions.csv"):
            assert (run_dir / file).is_file(), f"{name} did not leave {run_dir / file}"
    if name == "08_benchmark":
        for file in ("results.csv", "sweep.csv", "table2.md"):
            assert (results / file).is_file()
    if name == "09_small_data":
        curve = pd.read_csv(results / "curve" / "curve.csv")
        assert {"tl-finetune", "tlrl-dl-dense", "zero-shot", "offset", "mean"} <= set(curve["method"])
        assert curve["size"].nunique() >= 2 and curve["test_mae"].notna().all()
    if name == "10_your_own_data":
        own = results.with_name(f"{results.name}-expt_bandgap")
        for slug in OWN_DATA_SLUGS:
            assert (own / "runs" / slug / "metrics.json").is_file(), f"tlrl fit left no {slug} run in {own}"
        for slug in OWN_DATA_SLUGS[:3]:
            header = (own / f"predictions_{slug}.csv").read_text().splitlines()[0].split(",")
            assert {"formula", "prediction", "std"} <= set(header), f"tlrl predict with {slug}: {header}"

    nb = nbformat.read(run.output, as_version=4)
    outputs = [o for c in code_cells(nb) for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs), f"{name} drew no figure"
    glued = {o["metadata"]["scrapbook"]["name"] for o in outputs if "scrapbook" in o.get("metadata", {})}
    markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    placed = set(re.findall(r"```\{glue:figure\} (\S+)", markdown))
    assert glued == placed, f"{name}: figures glued {sorted(glued)} but captioned {sorted(placed)}"
    summary = [o for o in code_cells(nb)[-1].outputs if "text/markdown" in o.get("data", {})]
    assert summary and "**" in summary[0]["data"]["text/markdown"], "the last code cell prints the key points"
