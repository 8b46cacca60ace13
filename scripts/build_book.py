"""Build the HTML book from papermill-executed notebooks (what ``make book`` runs after papermill).

    python scripts/build_book.py EXECUTED_DIR [--out _build/html] [--work _build/book-work]

It stages ``_config.yml``, ``_toc.yml``, ``book/`` and the executed notebooks into
``WORK/src``, tidies the notebooks' outputs for a static page (progress-bar widgets become
their final text, carriage-return updates and terminal escapes are collapsed), renders the
run-profile table from ``tlrl.profiles``, and runs ``jupyter-book build -W`` on the stage
with execution off. Only a build without warnings replaces ``--out``, in one rename: a
failed build leaves the previous book as it was.
"""

from __future__ import annotations

import argparse
import html
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import yaml

REPO = Path(__file__).resolve().parents[1]
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def toc_notebooks(toc_path: Path) -> list[str]:
    """The notebook chapters listed in _toc.yml, as paths without suffix (e.g. notebooks/01_data)."""
    toc = yaml.safe_load(toc_path.read_text())
    files = [c["file"] for part in toc.get("parts", []) for c in part.get("chapters", [])]
    return [f for f in files if f.startswith("notebooks/")]


def widget_text(model_id: str, state: dict) -> str | None:
    """The final text of a tqdm notebook progress bar (an HBox of HTML, FloatProgress, HTML)."""
    box = state.get(model_id)
    if not box or box.get("model_name") != "HBoxModel":
        return None
    parts = []
    for child in box["state"].get("children", []):
        model = state.get(child.removeprefix("IPY_MODEL_"), {})
        value = model.get("state", {})
        if model.get("model_name") == "HTMLModel":
            parts.append(html.unescape(value.get("value", "")).replace("\u2007", " "))
        elif model.get("model_name") == "FloatProgressModel":
            done = value.get("value", 0) / value["max"] if value.get("max") else 1.0
            filled = round(10 * min(max(done, 0.0), 1.0))
            parts.append("|" + "█" * filled + " " * (10 - filled) + "|")
    return "".join(parts).strip() or None


def clean_stream(text: str) -> str:
    """What a terminal would show: escape codes dropped, each line cut to its last carriage return."""
    lines = [line.rstrip("\r").rsplit("\r", 1)[-1] for line in ANSI.sub("", text).split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n") + "\n"


def tidy(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Make the executed notebook's outputs readable as static HTML."""
    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        outputs = []
        for out in cell.get("outputs", []):
            if out.output_type in ("display_data", "execute_result") and WIDGET_VIEW in out.get("data", {}):
                text = widget_text(out["data"][WIDGET_VIEW]["model_id"], state)
                if text:
                    outputs.append(nbformat.v4.new_output("stream", name="stderr", text=text + "\n"))
                continue
            if out.output_type == "stream":
                if outputs and outputs[-1].output_type == "stream" and outputs[-1].name == out.name:
                    outputs[-1].text += out.text
                else:
                    outputs.append(out)
                continue
            outputs.append(out)
        for out in outputs:
            if out.output_type == "stream":
                out.text = clean_stream(out.text)
        cell.outputs = [o for o in outputs if o.output_type != "stream" or o.text.strip()]
    nb.metadata.pop("widgets", None)
    return nb


def profiles_table() -> str:
    """The run profiles as a Markdown table, straight from tlrl.profiles."""
    from tlrl.profiles import PROFILES

    use = {"smoke": "tests and CI: checks that everything runs, in seconds per chapter",
           "quick": "the results committed under `results/quick`; a laptop CPU",
           "full": "the paper's protocol; a GPU and many hours"}
    rows = ["| profile | what it runs | meant for |", "|---|---|---|"]
    for name, profile in PROFILES.items():
        rows.append(f"| `{name}` | {profile.reductions} | {use.get(name, '')} |")
    return "\n".join(rows) + "\n"


def stage(executed: Path, src: Path) -> None:
    if src.exists():
        shutil.rmtree(src)
    src.mkdir(parents=True)
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy2(REPO / name, src / name)
    shutil.copytree(REPO / "book", src / "book", ignore=shutil.ignore_patterns("_build", ".ipynb_checkpoints"))
    generated = src / "book" / "_generated"
    generated.mkdir(exist_ok=True)
    (generated / "profiles.md").write_text(profiles_table())
    (src / "notebooks").mkdir()
    missing = []
    for entry in toc_notebooks(REPO / "_toc.yml"):
        name = Path(entry).name + ".ipynb"
        path = executed / name
        if not path.is_file():
            missing.append(name)
            continue
        nb = nbformat.read(path, as_version=4)
        errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
        if errors:
            sys.exit(f"{path} contains an error output ({errors[0].ename}): fix the notebook and run it again")
        nbformat.write(tidy(nb), src / "notebooks" / name)
    if missing:
        sys.exit(f"executed notebooks missing in {executed}: {', '.join(missing)} (run them with papermill first)")


def build(executed: Path, out: Path, work: Path) -> None:
    src, build_dir = work / "src", work / "out"
    stage(executed, src)
    if build_dir.exists():
        shutil.rmtree(build_dir)
    jb = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(jb) if jb.exists() else "jupyter-book", "build", str(src), "--path-output", str(build_dir),
           "--builder", "html", "-W", "-n", "--keep-going"]
    print("$", " ".join(cmd), flush=True)
    result = subprocess.run(cmd)
    html_dir = build_dir / "_build" / "html"
    if result.returncode != 0 or not (html_dir / "index.html").is_file():
        sys.exit(f"jupyter-book build failed (exit {result.returncode}); the published book at {out} is unchanged")
    new, old = out.with_name(out.name + ".new"), out.with_name(out.name + ".old")
    for path in (new, old):
        if path.exists():
            shutil.rmtree(path)
    shutil.copytree(html_dir, new)
    if out.exists():
        out.rename(old)
    new.rename(out)
    if old.exists():
        shutil.rmtree(old)
    print(f"book: {out / 'index.html'}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("executed", type=Path, help="folder with the papermill-executed notebooks")
    parser.add_argument("--out", type=Path, default=REPO / "_build" / "html", help="where the finished HTML goes")
    parser.add_argument("--work", type=Path, default=REPO / "_build" / "book-work", help="staging and scratch folder")
    args = parser.parse_args(argv)
    build(args.executed.resolve(), args.out.resolve(), args.work.resolve())


if __name__ == "__main__":
    main()
