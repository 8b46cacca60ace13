"""Build the HTML book from papermill-executed notebooks (what ``make book`` runs after papermill).

    python scripts/build_book.py EXECUTED_DIR [--out _build/html] [--work _build/book-work]

It stages ``_config.yml``, ``_toc.yml``, ``book/`` and the executed notebooks into
``WORK/src``, tidies the notebooks for a static page (papermill's injected-parameters cell is
dropped; progress bars, widget or text, are dropped; carriage-return updates and terminal
escapes are collapsed; the checkout's and the home folder's paths are shown relative; figures
glued by ``tlrl.plots.show`` appear only where a ``{glue:figure}`` directive places them with
a caption), renders the run-profile table from ``tlrl.profiles`` and the GPU measurements from
``results/gpu/`` (``benchmarks/gpu_check.py``), and runs
``jupyter-book build -W`` on the stage with execution off. Only a build without warnings
replaces ``--out``, in one rename: a failed build leaves the previous book as it was.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def toc_notebooks(toc_path: Path) -> list[str]:
    """The notebook chapters listed in _toc.yml, as paths without suffix (e.g. notebooks/01_data)."""
    toc = yaml.safe_load(toc_path.read_text())
    files = [c["file"] for part in toc.get("parts", []) for c in part.get("chapters", [])]
    return [f for f in files if f.startswith("notebooks/")]


GLUE_PREFIX = "application/papermill.record/"
# a tqdm bar as text: "42%|████▏     | 5/12 [00:01<00:02, 3.1it/s]", or its escape-code remnants
PROGRESS_LINE = re.compile(r"\d+%\|.*\||\d+/\d+ \[\d+:\d+|^\s*\x1b?\[A\s*$")
LOCAL_PATHS = [(str(REPO) + "/", ""), (str(Path.home()) + "/", "~/")]


def clean_stream(text: str) -> str:
    """What a terminal would show, without progress bars: escape codes dropped, each line cut to its
    last carriage return, tqdm lines removed."""
    lines = [line.rstrip("\r").rsplit("\r", 1)[-1] for line in text.split("\n")]
    lines = [ANSI.sub("", line) for line in lines if not PROGRESS_LINE.search(line)]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n") + "\n"


def relative_paths(text: str) -> str:
    """The build machine's checkout and home folder, shown as repository-relative and ~/ paths."""
    for local, shown in LOCAL_PATHS:
        text = text.replace(local, shown)
    return text


def tidy(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Make the executed notebook readable as a static page."""
    nb.cells = [c for c in nb.cells if "injected-parameters" not in c.metadata.get("tags", [])]
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        outputs = []
        for out in cell.get("outputs", []):
            if out.output_type in ("display_data", "execute_result") and WIDGET_VIEW in out.get("data", {}):
                continue  # a progress-bar widget
            glued = out.get("metadata", {}).get("scrapbook")
            if glued and not glued.get("mime_prefix"):  # shown by its {glue:figure}, with a caption
                glued["mime_prefix"] = GLUE_PREFIX
                out["data"] = {GLUE_PREFIX + k: v for k, v in out["data"].items()}
            if out.output_type == "stream":
                if outputs and outputs[-1].output_type == "stream" and outputs[-1].name == out.name:
                    outputs[-1].text += out.text
                else:
                    outputs.append(out)
                continue
            outputs.append(out)
        for out in outputs:
            if out.output_type == "stream":
                out.text = relative_paths(clean_stream(out.text))
            for mime, value in out.get("data", {}).items():
                if mime.startswith(("text/", GLUE_PREFIX + "text/")) and isinstance(value, str):
                    out["data"][mime] = relative_paths(value)
        cell.outputs = [o for o in outputs if o.output_type != "stream" or o.text.strip()]
    nb.metadata.pop("widgets", None)
    return nb


def profiles_table() -> str:
    """The run profiles as a Markdown table, straight from tlrl.profiles."""
    from tlrl.profiles import PROFILES

    use = {"smoke": "tests and CI: checks that everything runs, in seconds per chapter",
           "quick": "this book's committed results; a CPU (Table II for one seed: about 95 minutes on 2 cores)",
           "full": "the paper's protocol with the training settings of the authors' code; a GPU and many hours"}
    rows = ["| profile | what it runs | meant for |", "|---|---|---|"]
    for name, profile in PROFILES.items():
        rows.append(f"| `{name}` | {profile.description} | {use.get(name, '')} |")
    return "\n".join(rows) + "\n"


COUNTS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five"}


def curve_differences(curve: Path, a: str, b: str) -> list[dict]:
    """``a`` − ``b`` on the learning curve's test MAE at every size of ``summary.csv``, smallest first: the paired
    difference over seeds (``paired.csv``) where there is one, else, at a size run with one seed, the plain
    difference of the two test MAEs (``verdict`` None)."""
    from tlrl.paired import reading

    summary = pd.read_csv(curve / "summary.csv")
    paired = pd.read_csv(curve / "paired.csv")
    paired = paired[(paired.a == a) & (paired.b == b)].set_index("size")
    mae = summary.pivot_table(index="size", columns="method", values="test_mae")
    seeds = summary.pivot_table(index="size", columns="method", values="seeds")
    rows = []
    for size in sorted(set(mae.index) | set(paired.index)):
        if size in paired.index:
            p = paired.loc[size]
            rows.append({"size": int(size), "mean": float(p["mean"]), "n": int(p["n"]),
                         "verdict": reading(p["verdict"], int(p["n"]))})
        elif a in mae and b in mae and mae.loc[size, [a, b]].notna().all():
            rows.append({"size": int(size), "mean": float(mae.loc[size, a] - mae.loc[size, b]),
                         "n": int(seeds.loc[size, [a, b]].min()), "verdict": None})
    return rows


def key_results(results: Path = REPO / "results") -> str:
    """The introduction's box of headline numbers, from the committed quick-profile results: Table II's
    key rows, TL+RL against TL over three seeds, and the learning curve's differences at every size it has
    (read from ``curve/summary.csv`` and ``curve/paired.csv``, so a size added to the curve appears here)."""
    from tlrl.benchmark import PAPER_CV, PAPER_NAMES, compare_seeds, load_runs
    from tlrl.book import signed
    from tlrl.profiles import get_profile

    quick = get_profile("quick")

    runs = {r["method"]: r for r in load_runs(results / "quick")}
    row = lambda slug: (f"{PAPER_NAMES[slug]} {runs[slug]['cv_mae_mean']:.3f} (CV) and {runs[slug]['test_mae']:.3f} "  # noqa: E731
                        f"(test), the paper {PAPER_CV[slug][0]:.3f} (CV)")
    seeds = [results / "quick", results / "quick-seed1", results / "quick-seed2"]
    pooled = [p for p in (compare_seeds(seeds, a, "tl-finetune") for a in ("tlrl-dl-relu", "tlrl-dl-dense")) if p]
    folds = pooled[0]["folds"].n
    per_seed = folds // pooled[0]["seeds"]
    verdicts = sorted({p["folds"].verdict for p in pooled})
    same = len(pooled) == 2 and verdicts in (["higher"], ["lower"])
    ours = f"in our runs both TL+RL rows are {verdicts[0]} than TL" if same else "our readings are above"

    def unpaired(d: dict) -> str:
        return f"{COUNTS.get(d['n'], d['n'])} seed{'s' if d['n'] > 1 else ''}, no paired verdict"

    curve = results / "quick" / "curve"
    tl_sc = curve_differences(curve, "tl-finetune", "sc-dl-ef")
    paired_sc = [d for d in tl_sc if d["verdict"]]
    seed_counts = sorted({d["n"] for d in paired_sc})
    seed_words = (f"{COUNTS.get(seed_counts[0], seed_counts[0])} seeds each" if len(seed_counts) == 1
                  else "paired over seeds")
    if paired_sc and all(d["verdict"].startswith("lower") for d in paired_sc):
        first, last = paired_sc[0], paired_sc[-1]
        small = (f"TL:Fine-Tune is lower than SC:DL(EF) at every size from {first['size']:,} to {last['size']:,} rows "
                 f"({seed_words}, under this protocol), by {abs(first['mean']):.2f} at {first['size']:,} rows and "
                 f"{abs(last['mean']):.3f} at {last['size']:,}")
    else:
        small = "TL:Fine-Tune − SC:DL(EF): " + "; ".join(
            f"{d['size']:,} rows {signed(d['mean'])} ({d['verdict']})" for d in paired_sc)
    small += "".join(f"; at {d['size']:,} rows TL:Fine-Tune's test MAE is {abs(d['mean']):.3f} "
                     f"{'below' if d['mean'] < 0 else 'above'} SC:DL(EF)'s ({unpaired(d)})"
                     for d in tl_sc if not d["verdict"])
    dense = curve_differences(curve, "tlrl-dl-dense", "tl-finetune")
    per_size = "; ".join(f"{d['size']:,} rows {signed(d['mean'])} ({d['verdict'] or unpaired(d)})" for d in dense)
    lines = [
        ":::{admonition} Key results",
        ":class: tip",
        "",
        f"Our `quick` profile on a CPU: all {runs['tl-finetune']['n_train']:,} JARVIS training rows, "
        f"{quick.n_folds}-fold cross-validation, the {runs['tl-finetune']['n_test']:,} test rows, MAE in eV/atom.",
        "",
        f"* **Table II** ([chapter 8](../notebooks/08_benchmark.ipynb)): {row('tl-finetune')}; {row('sc-dl-ef')}; "
        f"{row('tlrl-dl-relu')}.",
        f"* **TL+RL against TL**, fold by fold: the difference of validation MAE on each of the {per_seed} CV "
        f"folds of {pooled[0]['seeds']} seeds ({folds} pairs), given as mean ± standard error (SE, the standard "
        f"deviation of the {folds} differences divided by √{folds}): "
        + "; ".join(f"{PAPER_NAMES[p['folds'].a]} {signed(p['folds'].mean, 4)} ± {p['folds'].standard_error:.4f}, "
                    f"{p['folds'].reading}" for p in pooled)
        + f". The paper's CV puts TL+RL:DL(Dense) at {PAPER_CV['tlrl-dl-dense'][0]:.3f} against TL's "
        f"{PAPER_CV['tl-finetune'][0]:.3f}; {ours}.",
        f"* **Small data** ([chapter 9](../notebooks/09_small_data.ipynb)), test MAE on subsamples of the training "
        f"rows: {small}. TL+RL:DL(Dense) − TL:Fine-Tune: {per_size}.",
        f"* **Caveats.** A reduced protocol ({quick.n_folds} folds, at most {quick.train.max_epochs} epochs "
        f"({quick.scratch_max_epochs} for SC:DL), and a "
        "successive-halving layer search: every candidate layer trains briefly on one fold and only the best go "
        "on, instead of each being cross-validated; see {ref}`layer-search`), "
        "at most three seeds, and data files that differ from the paper's; the paper's full protocol was not run. "
        "\"Lower\" and \"higher\" follow the [one paired rule](../notebooks/07_tl_rl.ipynb) (a mean difference "
        "more than two standard errors from zero), under this protocol.",
        ":::",
    ]
    return "\n".join(lines) + "\n"


def gpu_tables(results: Path = REPO / "results" / "gpu") -> str:
    """The committed GPU check (``benchmarks/gpu_check.py``: cuda.json and cuda_engine.json, and cpu.json as their
    reference) as Markdown."""
    gpu = json.loads((results / "cuda.json").read_text())
    cpu = json.loads((results / "cpu.json").read_text())
    rows = gpu["correctness"]["rows"]
    lines = [
        f"Measured on one {gpu['device_name']} (torch {gpu['torch']}, CUDA {gpu['cuda']}); the CPU reference on "
        f"{cpu['cpu_threads']} CPU threads (torch {cpu['torch']}).",
        "",
        f"**Correctness.** TL:Fine-Tune with quick's TL recipe on fold 0 of 10 ({rows['train']:,} train / "
        f"{rows['val']:,} val rows), from the source model shipped when it ran (OQMD test MAE 0.0424), tested "
        f"on the {rows['test']:,} test rows, eV/atom:",
        "",
        "| precision | CPU val | GPU val | gap | CPU test | GPU test | CPU s | GPU s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for precision in ("fp32", "bf16"):
        g, c = gpu["correctness"][precision], cpu["correctness"][precision]
        lines.append(f"| {precision} | {c['val_mae']:.4f} | {g['val_mae']:.4f} | {g['val_gap']:.4f} | "
                     f"{c['test_mae']:.4f} | {g['test_mae']:.4f} | {c['seconds']:.0f} | {g['seconds']:.1f} |")
    lines += ["", f"**Ten CV folds at once.** Seconds for {gpu['speedup']['cv'][0]['epochs']} epochs of the 10 folds, "
              "trained one after another or stacked in one `fit_many`, eagerly or with each step replayed as a CUDA "
              "graph (the default on CUDA):", "",
              "| batch | precision | one by one | stacked | stacked + CUDA graphs | speed-up | with graphs |",
              "|---|---|---|---|---|---|---|"]
    for r in gpu["speedup"]["cv"]:
        lines.append(f"| {r['batch']} | {r['precision']} | {r['sequential_s']:.1f} | {r['fit_many_s']:.1f} | "
                     f"{r['fit_many_graph_s']:.1f} | ×{r['ratio']:.1f} | ×{r['graph_ratio']:.1f} |")
    engine = json.loads((results / "cuda_engine.json").read_text())["engine"]
    lines += ["", "**Where the stack changes**, the graphed engine repeats the eager one exactly (largest difference "
              f"of the training and validation curves: {engine['max_history_gap']:g}). Four stacked folds stopped "
              f"early after {', '.join(map(str, engine['epochs_run']))} epochs, so the step was captured again each "
              "time one left. A run interrupted after two epochs and resumed from its file also matched "
              f"(difference {engine['resumed_max_history_gap']:g})."]
    step = gpu["speedup"]["step"]
    variants = [(name, step[name]) for name in ("eager", "cuda_graph", "torch_compile") if "steps_per_s" in step[name]]
    lines += ["", f"**One training step** of the 10 stacked folds at batch {step['batch']} (fp32): "
              + ", ".join(f"{name.replace('_', ' ')} {v['steps_per_s']:.0f} steps/s" for name, v in variants) + ".",
              "", "**The full protocol**, projected from the seconds per epoch of the stacked folds at batch 32 "
              f"({gpu['projection']['stacked_10_fold_epoch_s_batch32']:.2f} s) and of one source model on "
              f"{gpu['projection']['source_train_rows']:,} OQMD rows "
              f"({gpu['projection']['source_epoch_s_batch32']:.0f} s); early stopping decides the epochs:", "",
              "| epochs per fit | source model (h) | the paper's configurations (h) | with TL:Freeze's sweep (h) |",
              "|---|---|---|---|"]
    for h in gpu["projection"]["hours"]:
        lines.append(f"| {h['epochs_per_fit']} | {h['source_h']:.1f} | {h['paper_configurations_h']:.1f} | "
                     f"{h['with_tl_freeze_sweep_h']:.1f} |")
    return "\n".join(lines) + "\n"


def gpu_count_table(results: Path = REPO / "results" / "gpu", gpus: tuple[int, ...] = (1, 4, 8)) -> str:
    """The full protocol's projected hours on 1, 4 and 8 GPUs at 600 epochs per fit, from the measured seconds
    per stacked 10-fold epoch: with the plan's tasks (every fit of 10 folds is one) against one task per
    configuration (the longest configuration bounds it)."""
    projection = json.loads((results / "cuda.json").read_text())["projection"]
    fit_h = projection["stacked_10_fold_epoch_s_batch32"] * 600 / 3600
    fits = projection["fits_of_10_folds"]
    paper = {name: n for name, n in fits.items() if not name.startswith("TL:Freeze")}
    lines = [f"| GPUs | the paper's {sum(paper.values())} fits, a task per fit | the same, a task per configuration "
             f"| with TL:Freeze's sweep ({sum(fits.values())} fits), a task per fit |", "|---|---|---|---|"]
    for n in gpus:
        rounds = [math.ceil(sum(f.values()) / n) for f in (paper, fits)]
        by_config = max(sum(sorted(paper.values(), reverse=True)[i::n]) for i in range(n))
        lines.append(f"| {n} | {rounds[0] * fit_h:.1f} | {by_config * fit_h:.1f} | {rounds[1] * fit_h:.1f} |")
    return "\n".join(lines) + "\n"


def markdown_table(frame) -> str:
    """A DataFrame as a Markdown table (MAEs to 4 decimals, other numbers to 3 significant digits, missing
    values blank), its index left out."""
    def cell(v, column: str) -> str:
        if isinstance(v, float):
            return "" if v != v else f"{v:.4f}" if "MAE" in column else f"{v:.3g}"
        return "" if v is None else str(v)

    columns = list(map(str, frame.columns))
    rows = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    rows += ["| " + " | ".join(cell(v, c) for v, c in zip(row, columns, strict=True)) + " |"
             for row in frame.itertuples(index=False)]
    return "\n".join(rows) + "\n"


def seed_means(frame, keys: dict[str, str], sort: list[str] | None = None) -> str:
    """The rows of one recipe benchmark, averaged over seeds per setting: ``keys`` maps the frame's columns to
    the headers shown; every setting gets its number of runs and its mean validation and test MAE, in the order
    of the file unless ``sort`` names columns."""
    frame = frame.copy()
    for column in keys:
        if column not in frame:
            frame[column] = None
    table = (frame.groupby(list(keys), dropna=False, sort=False)
             .agg(runs=("val_mae", "size"), val=("val_mae", "mean"), test=("test_mae", "mean")).reset_index())
    if sort:
        table = table.sort_values(sort, kind="stable")
    table = table.rename(columns={**keys, "val": "val MAE", "test": "test MAE"})
    same = [c for c in table.columns[:-2] if table[c].nunique(dropna=False) == 1 and len(table) > 1]
    notes = [f"each row is {'one run' if n == 1 else f'the mean of {n} runs (seeds)'}"
             for n in table["runs"].head(1) if "runs" in same]
    notes += [f"{c} {markdown_table(table[[c]].head(1)).splitlines()[-1].strip('| ')} in every row"
              for c in same if c != "runs"]
    note = "; ".join(notes)
    return markdown_table(table.drop(columns=same)) + (f"\n{note[0].upper() + note[1:]}.\n" if note else "")


def recipe_tables(results: Path = REPO / "results") -> dict[str, str]:
    """The appendix's tables (book/recipe.md), rendered from the committed recipe benchmarks."""
    import pandas as pd

    from tlrl.benchmark import PAPER_NAMES
    from tlrl.book import signed
    from tlrl.paired import reading

    shown = {"scratch": "random", "tlrl-relu-2": "TL+RL:DL(ReLU), layer 2", "cuda: NVIDIA H200": "H200",
             "cpu": "CPU", "cpu (2 cores)": "CPU", "quick": "quick's recipe",
             "earlier source (OQMD test 0.0424)": "earlier", "shipped source (OQMD test 0.0395)": "shipped"}

    def read(name: str) -> pd.DataFrame:
        frame = pd.read_csv(results / name)
        return frame.apply(lambda c: c.replace(shown) if c.dtype == object else c)

    scratch = read("bench_recipe_scratch.csv")
    scratch["dropout"] = scratch["recipe"].str.contains("dropout").map({True: "yes", False: ""})
    scratch["features"] = scratch["features"].str.upper()
    rl = read("bench_recipe_rl.csv")
    rl["method"] = rl["method"].map(PAPER_NAMES).fillna(rl["method"])
    folds = read("bench_folds.csv").rename(columns={"cv_mae": "val_mae"})
    folds["method"] = folds["method"].map(PAPER_NAMES).fillna(folds["method"])
    confirm = read("bench_recipe_rl_cv.csv")
    confirm = pd.DataFrame({
        "configuration": confirm["method"].map(PAPER_NAMES), "change": confirm["change"],
        "CV MAE": confirm["cv_mae"], "quick's CV MAE": confirm["quick_cv_mae"],
        "difference ± SE": [f"{signed(m, 4)} ± {se:.4f}" for m, se in zip(confirm["diff_mean"], confirm["diff_se"])],
        "verdict": [reading(v, len(f.split())) for v, f in zip(confirm["verdict"], confirm["fold_val_mae"])]})
    curve = read("bench_curve_steps.csv")
    curve["method"] = curve["method"].map(PAPER_NAMES).fillna(curve["method"])
    source = read("bench_source_wd.csv")[
        ["source", "epochs", "weight_decay", "oqmd_test_mae", "tl_val_mae_mean", "tl_test_mae_mean", "tl_seeds"]]
    tables = {
        "recipe_schedule.md": seed_means(read("bench_recipe.csv"), {
            "init": "start", "batch": "batch", "lr": "peak lr", "schedule": "schedule", "precision": "precision",
            "epochs": "epochs", "speed_vs_first": "speed"}),
        "recipe_lr.md": seed_means(read("bench_recipe_lr.csv"), {
            "init": "start", "batch": "batch", "lr": "peak lr", "epochs": "epochs"}),
        "recipe_wd.md": seed_means(read("bench_recipe_wd.csv"), {
            "init": "start", "source": "source model", "device": "device", "lr": "peak lr",
            "weight_decay": "decay", "epochs": "epochs"}),
        "recipe_scratch.md": seed_means(scratch, {
            "features": "input", "batch": "batch", "lr": "peak lr", "weight_decay": "decay",
            "epochs": "epochs", "dropout": "dropout", "precision": "precision", "device": "device"},
            sort=["features", "batch", "lr", "weight_decay", "epochs"]),
        "recipe_source.md": markdown_table(source.rename(columns={
            "weight_decay": "weight decay", "oqmd_test_mae": "OQMD test MAE", "tl_val_mae_mean": "TL val MAE",
            "tl_test_mae_mean": "TL test MAE", "tl_seeds": "seeds"})),
        "recipe_folds.md": seed_means(folds, {"method": "configuration", "folds": "K",
                                              "fold_train_rows": "rows per fold model"}).replace("val MAE", "CV MAE"),
        "recipe_rl.md": seed_means(rl, {"method": "configuration", "layer": "layer", "change": "change"},
                                   sort=["method"]),
        "recipe_rl_cv.md": markdown_table(confirm),
        "curve_steps.md": seed_means(curve, {"size": "training rows", "method": "configuration", "batch": "batch",
                                             "min_steps": "at least … steps", "epochs": "epochs"}),
    }
    return tables


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
    (generated / "key_results.md").write_text(key_results())
    (generated / "gpu.md").write_text(gpu_tables())
    (generated / "gpus.md").write_text(gpu_count_table())
    for name, text in recipe_tables().items():
        (generated / name).write_text(text)
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
