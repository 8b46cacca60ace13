"""The book builds with -W from the smoke-executed notebooks, and renders in a real browser."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "_build" / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
CHAPTER = "08_benchmark"


@pytest.fixture(scope="module")
def book(smoke_notebooks, tmp_path_factory) -> Path:
    """The HTML book built by scripts/build_book.py (what `make book` runs after papermill)."""
    failed = {name: run.error for name, run in smoke_notebooks.runs.items() if run.error}
    if failed:
        pytest.fail(f"notebooks failed, so the book cannot be built: {sorted(failed)}")
    base = tmp_path_factory.mktemp("book")
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "build_book.py"), str(smoke_notebooks.executed),
         "--out", str(base / "html"), "--work", str(base / "work")],
        capture_output=True, text=True,
    )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "book-build.log").write_text(result.stdout + result.stderr)
    assert result.returncode == 0, f"jupyter-book build -W failed:\n{(result.stdout + result.stderr)[-6000:]}"
    return base / "html"


def test_every_page_is_built_and_offline(book):
    pages = ["index.html", "book/intro.html", "book/recipe.html", "book/reproduce.html", "book/references.html"]
    pages += [f"notebooks/{p.stem}.html" for p in sorted((REPO / "notebooks").glob("*.ipynb"))]
    for page in pages:
        assert (book / page).is_file(), page
    for html in book.rglob("*.html"):
        remote = re.findall(r'<(?:script|link|img)[^>]+(?:src|href)="(https?://[^"]+)"', html.read_text())
        assert not remote, f"{html.relative_to(book)} loads remote assets: {remote[:3]}"


def test_staging_tidies_an_executed_notebook():
    """The injected-parameters cell, progress bars and local paths go; glued figures wait for their caption."""
    import nbformat

    sys.path.insert(0, str(REPO / "scripts"))
    from build_book import GLUE_PREFIX, tidy

    injected = nbformat.v4.new_code_cell("profile = 'smoke'", metadata={"tags": ["injected-parameters"]})
    cell = nbformat.v4.new_code_cell("run()")
    cell.outputs = [
        nbformat.v4.new_output("stream", name="stderr", text=" 40%|████      | 2/5 [00:01<00:02,  1.5it/s]\r"
                               "100%|██████████| 5/5 [00:03<00:00,  1.6it/s]\n\x1b[A\n"),
        nbformat.v4.new_output("stream", name="stdout", text=f"results in {REPO}/results/quick, cache in "
                               f"{Path.home()}/.cache/tlrl\n"),
        nbformat.v4.new_output("display_data", data={"image/png": "iVBOR", "text/plain": "<Figure>"},
                               metadata={"scrapbook": {"name": "fig-a", "mime_prefix": ""}}),
    ]
    nb = tidy(nbformat.v4.new_notebook(cells=[injected, cell]))
    assert len(nb.cells) == 1
    streams = [o.text for o in nb.cells[0].outputs if o.output_type == "stream"]
    assert streams == ["results in results/quick, cache in ~/.cache/tlrl\n"]
    figure = nb.cells[0].outputs[-1]
    assert set(figure.data) == {GLUE_PREFIX + "image/png", GLUE_PREFIX + "text/plain"}
    assert figure.metadata["scrapbook"]["mime_prefix"] == GLUE_PREFIX


def test_the_failed_build_keeps_the_published_book(tmp_path):
    """A build that cannot finish exits non-zero and leaves the previous book in place."""
    out = tmp_path / "html"
    out.mkdir()
    (out / "index.html").write_text("previous book")
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "build_book.py"), str(tmp_path / "no-such-folder"),
         "--out", str(out), "--work", str(tmp_path / "work")],
        capture_output=True, text=True,
    )
    assert result.returncode != 0 and "missing" in result.stderr
    assert (out / "index.html").read_text() == "previous book"


def test_pages_render_in_chromium(book):
    from playwright.sync_api import sync_playwright

    from tlrl.benchmark import PAPER_CV, PAPER_TEST
    from tlrl.profiles import get_profile

    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: `make test` installs it (apt-get install chromium)"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file:")
                   else route.abort())  # the book must work offline

        page.goto((book / "index.html").as_uri())
        page.wait_for_load_state("load")
        assert "Transfer and representation learning" in page.inner_text("main h1")
        assert page.evaluate("() => [...document.querySelectorAll('main img')]"
                             ".some(i => i.src.endsWith('.svg') && i.complete && i.naturalWidth > 0)"), \
            "the schematic did not render"
        page.screenshot(path=str(ARTIFACTS / "book-index.png"))

        page.goto((book / "notebooks" / f"{CHAPTER}.html").as_uri())
        page.wait_for_load_state("load")
        assert "The benchmark" in page.inner_text("main h1")
        figures = page.evaluate("() => [...document.querySelectorAll('main figure img')]"
                                ".map(i => [i.complete, i.naturalWidth])")
        assert figures and all(done and width > 0 for done, width in figures), f"figures did not render: {figures}"
        colab = page.eval_on_selector_all("a[href*='colab.research.google.com']", "links => links.map(a => a.href)")
        assert any(f"tlrl-book/tlrl/blob/main/notebooks/{CHAPTER}.ipynb" in href for href in colab), colab
        text = page.inner_text("main")
        for slug, (mean, std) in PAPER_CV.items():
            assert f"{mean:.3f} ± {std:.3f}" in text, f"the paper's CV MAE of {slug} is missing from Table II"
        for group, value in PAPER_TEST.items():
            assert f"{value:.3f}" in text, f"the paper's {group} test MAE is missing"
        assert "Differences from the paper" in text
        page.screenshot(path=str(ARTIFACTS / f"book-{CHAPTER}.png"), full_page=True)

        page.goto((book / "book" / "reproduce.html").as_uri())
        page.wait_for_load_state("load")
        text = page.inner_text("main")
        assert "make book" in text and get_profile("quick").description in text, "the profile table is missing"
        page.goto((book / "book" / "recipe.html").as_uri())
        page.wait_for_load_state("load")
        text = page.inner_text("main")
        assert "How the recipe was chosen" in text and "peak lr" in text, "the recipe tables are missing"
        gpu = json.loads((REPO / "results" / "gpu" / "cuda.json").read_text())
        b32 = gpu["speedup"]["cv"][0]
        assert gpu["device_name"] in text and f"×{b32['graph_ratio']:.1f}" in text, "the GPU measurements are missing"
        browser.close()


# What a reader should never meet on a page: leftovers of formatting (anywhere, outputs included) and
# the project's internal words (in the prose, outside code).
DEBRIS = [r"<NA>", r"\bstage\(s\)", r"(?<![\d.])-0\.0+ ± 0\.0+", r"\(cache: ", r"\bresults in (?:smoke|quick|full)\b",
          r"\bnan ± nan\b", r"\bNaN\b"]
INTERNAL = [r"\blent GPU\b", r"\(see the README\)", r"\bresults/[\w./-]+\.(?:csv|json|md)\b",
            r"\b(?:sc-ml-(?:ef|pa)|sc-dl-(?:ef|pa)|tl-finetune|tl-freeze|rl-freezing|rl-dl-(?:relu|dense)"
            r"|tlrl-dl-(?:relu|dense)|peer-hgb-pa)\b"]


def page_texts(html: Path) -> tuple[str, str]:
    """A page's main text without its code cells' inputs, and that text's prose (no code, no outputs)."""
    from bs4 import BeautifulSoup

    main = BeautifulSoup(html.read_text(), "html.parser").find("main") or BeautifulSoup("", "html.parser")
    for node in main.select("script, style, div.cell_input, .headerlink"):
        node.decompose()
    shown = main.get_text(" ")
    for node in main.select("div.cell_output, pre, code, div.highlight"):
        node.decompose()
    return shown, main.get_text(" ")


def test_page_texts_split_prose_from_code(tmp_path):
    page = tmp_path / "p.html"
    page.write_text('<main><p>TL:Fine-Tune beat <code>tl-finetune</code>.</p><div class="cell_input">x = "<NA>"'
                    '</div><div class="cell_output"><table><td>&lt;NA&gt;</td></table></div></main>')
    shown, prose = page_texts(page)
    assert "<NA>" in shown and 'x = "' not in shown
    assert "TL:Fine-Tune" in prose and "tl-finetune" not in prose and "<NA>" not in prose


def test_a_figure_wider_than_the_column_is_narrowed_to_it():
    import matplotlib.pyplot as plt

    from tlrl.plots import COLUMN_INCHES, fit_column

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax in axes:
        ax.plot([100, 1000], [0.5, 0.2], label="TL:Fine-Tune")
    axes[1].legend(loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.tight_layout()
    fit_column(fig)
    width = fig.get_tightbbox(fig.canvas.get_renderer()).width
    assert COLUMN_INCHES * 0.9 < width <= COLUMN_INCHES * 1.02
    assert fig.get_size_inches()[1] == 4  # the height stays
    plt.close(fig)


def test_training_curves_fit_the_column_with_the_legend_under_the_axes():
    """plot_curves: a column wide without narrowing, whole epochs on the axis, and the legend below the data."""
    from types import SimpleNamespace

    import matplotlib.pyplot as plt

    from tlrl.plots import COLUMN_INCHES, plot_curves

    history = {"epoch": list(range(1, 21)), "val_mae": [1 / e for e in range(1, 21)],
               "train_mae": [0.9 / e for e in range(1, 21)]}
    fits = {f"TL+RL:DL(Dense), layer {k}": SimpleNamespace(history=history) for k in (1, 2)}
    fig = plot_curves(fits, "Fold 0", "eV/atom")
    fig.canvas.draw()  # the constrained layout places the axes and the legend when the figure is drawn
    renderer = fig.canvas.get_renderer()
    assert fig.get_tightbbox(renderer).width <= COLUMN_INCHES * 1.02
    ax = fig.axes[0]
    assert fig.legends[0].get_window_extent(renderer).y1 < ax.get_tightbbox(renderer).y0  # under the x label
    assert all(float(t).is_integer() for t in ax.get_xticks())
    plt.close(fig)


def test_results_table_prints_every_mae_to_four_decimals():
    import pandas as pd

    from tlrl.book import results_table

    frame = pd.DataFrame({"paper_name": ["TL+RL:DL(ReLU)"], "cv_mae_mean": [0.1197], "cv_mae_std": [0.003],
                          "best_layer": [3.0], "test_mae": [0.115], "test_mae_ensemble": [float("nan")],
                          "seconds": [510.4]})
    row = results_table(frame, "eV/atom").iloc[0]
    assert row.tolist() == ["0.1197", "0.0030", "3", "0.1150", "", 510]


def test_pages_carry_no_debris_or_internal_words(book):
    """The rendered pages have no formatting leftovers and no internal words (slugs, file paths) in prose."""
    found = []
    for html in sorted(book.rglob("*.html")):
        if html.name in ("genindex.html", "search.html") or "_static" in html.parts:
            continue
        shown, prose = page_texts(html)
        found += [f"{html.relative_to(book)}: {m.group(0)!r}" for pattern in DEBRIS
                  for m in re.finditer(pattern, shown)]
        found += [f"{html.relative_to(book)}: {m.group(0)!r}" for pattern in INTERNAL
                  for m in re.finditer(pattern, prose)]
    assert not found, "debris or internal words on the pages:\n" + "\n".join(found[:40])


def test_every_page_reads_clean_in_chromium(book):
    """No local path and no progress bar in any page; every figure numbered, captioned and shown at its size
    (legible at 1280 px); chapter 10 there."""
    from playwright.sync_api import sync_playwright

    local = re.compile("|".join(re.escape(str(p)) for p in (REPO, Path.home(), Path(tempfile.gettempdir())))
                       + r"|(?<![\w.~$])/(?:home|Users|root|work)/")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file:")
                   else route.abort())
        for html in sorted(book.rglob("*.html")):
            if html.name in ("genindex.html", "search.html") or "_static" in html.parts:
                continue  # Sphinx's index pages and the theme's template fragments are not pages
            page.goto(html.as_uri())
            page.wait_for_load_state("load")
            name = html.relative_to(book).as_posix()
            text = page.inner_text("main")
            assert not local.search(text), f"{name} shows a local path: {local.search(text).group(0)!r}"
            assert not re.search(r"\d\s?(it/s|s/it)|\d+%\|", text), f"{name} shows a progress bar"
            uncaptioned = page.evaluate(
                "() => [...document.querySelectorAll('main article img')]"  # not the theme's launch buttons
                ".filter(i => !i.closest('figure')?.querySelector('figcaption .caption-number'))"
                ".map(i => i.src.split('/').pop())")
            assert not uncaptioned, f"{name} has figures without a numbered caption: {uncaptioned}"
            shrunk = page.evaluate(  # a figure shown below 90 % of its size shrinks its text with it
                "() => [...document.querySelectorAll('main article img')]"
                ".filter(i => i.clientWidth > 0 && i.naturalWidth > 1.1 * i.clientWidth)"
                ".map(i => `${i.src.split('/').pop()} ${i.naturalWidth}px shown at ${i.clientWidth}px`)")
            assert not shrunk, f"{name} shows figures scaled down: {shrunk}"
        page.goto((book / "notebooks" / "10_your_own_data.html").as_uri())
        assert "Your own data" in page.inner_text("main h1")
        assert "tlrl fit" in page.inner_text("main") and "tlrl predict" in page.inner_text("main")
        page.screenshot(path=str(ARTIFACTS / "book-10_your_own_data.png"), full_page=True)
        browser.close()


def build_book_module():
    sys.path.insert(0, str(REPO / "scripts"))
    import build_book

    return build_book


def test_profile_descriptions_read_plainly_and_the_recorded_wording_stays():
    """The profile table says what the settings mean; the wording every run records (and chapter 10 compares
    to reuse its fits) is unchanged, so the committed runs still match their profile."""
    from tlrl.profiles import get_profile, layer_grid

    quick, smoke, full = (get_profile(name) for name in ("quick", "smoke", "full"))
    assert "peak lr 0.001 (TL 0.0005, SC:DL 0.002), 1 warm-up epoch, then cosine decay" in quick.description
    assert "chosen among layers 1–15, by successive halving" in quick.description
    assert "rungs of 3 and 6 epochs, the best third going on" in quick.description
    assert "chosen among layers 8 and 15" in smoke.description
    assert "constant lr 0.0001" in full.description and "each cross-validated" in full.description
    for text in (quick.description, smoke.description, full.description):
        assert "warm-up 1 +" not in text and "(15)" not in text and "(2)" not in text and "1/2 epochs" not in text
    assert layer_grid((1, 2, 3, 5, 8, 12)) == "layers 1, 2, 3, 5, 8 and 12" and layer_grid((4,)) == "layer 4"
    recorded = json.loads((REPO / "results" / "quick" / "runs" / "tl-finetune" / "metrics.json").read_text())
    assert recorded["reductions"] == quick.reductions
    table = build_book_module().profiles_table()
    assert quick.description in table and "the authors' code" in table


def test_key_results_follow_the_curve_files(tmp_path):
    """The box reads the curve's sizes from summary.csv and paired.csv (a size added there appears), gives the
    one-seed size without a verdict, writes negative numbers with a minus sign and defines SE where it is used."""
    import shutil

    import pandas as pd

    build_book = build_book_module()
    text = build_book.key_results()
    assert "10,000 rows" in text and "no paired verdict" in text
    assert "standard error (SE" in text and "successive-halving layer search:" in text
    assert not re.search(r"(?<![\w.])-\d", text.replace(":::", "")), "a hyphen used as a minus sign"
    assert "\u2212" in text

    results = tmp_path / "results"
    for name in ("quick", "quick-seed1", "quick-seed2"):
        shutil.copytree(REPO / "results" / name, results / name, ignore=shutil.ignore_patterns("*.pt", "*.npz"))
    curve = results / "quick" / "curve"
    summary, paired = pd.read_csv(curve / "summary.csv"), pd.read_csv(curve / "paired.csv")
    smallest = summary["size"].min()  # a new, smaller size: a copy of the smallest one's rows
    pd.concat([summary[summary["size"] == smallest].assign(size=20), summary]).to_csv(curve / "summary.csv",
                                                                                       index=False)
    pd.concat([paired[paired["size"] == smallest].assign(size=20), paired]).to_csv(curve / "paired.csv", index=False)
    extended = build_book.key_results(results)
    assert "every size from 20 to" in extended


def fenced_and_prose(markdown: str) -> tuple[list[str], str]:
    """The lines inside fenced code blocks, and the rest of the page (MyST directives such as ```{figure}
    count as prose)."""
    code, prose, fence = [], [], None
    for line in markdown.splitlines():
        if line.lstrip().startswith("```"):
            fence = None if fence else ("directive" if line.lstrip()[3:].startswith("{") else "code")
            continue
        (code if fence == "code" else prose).append(line)
    return code, "\n".join(prose)


def test_intro_recipe_and_reproduce_read_clean():
    """Code blocks fit the column; prose has no file paths of the repository's internals, no hyphen for a minus
    sign, and no words a reader never met; the schematic is laid out for the column with legible text."""
    build_book = build_book_module()
    generated = build_book.key_results() + build_book.gpu_tables() + build_book.profiles_table()
    for name in ("intro.md", "recipe.md", "reproduce.md"):
        code, prose = fenced_and_prose((REPO / "book" / name).read_text())
        wide = [line for line in code if len(line) > 80]
        assert not wide, f"{name}: code lines wider than the column: {wide}"
        if name != "reproduce.md":  # the how-to page names the files a reader runs and reads
            prose += generated
            paths = re.findall(r"\b(?:benchmarks|results|scripts)/[\w./-]+\.(?:py|json|csv)\b", prose)
            assert not paths, f"{name}: file paths in prose: {paths}"
        assert not re.search(r"(?<![\w.`~/-])-\d*\.\d", prose), f"{name}: a hyphen used as a minus sign"
        for word in ("local:2", "../shared", "nine notebooks", "grows as runs finish", "laptop CPU"):
            assert word not in prose, f"{name}: {word!r}"
    svg = (REPO / "book" / "figures" / "tlrl_schematic.svg").read_text()
    assert int(re.search(r'<svg[^>]* width="(\d+)"', svg).group(1)) <= 680
    sizes = [float(v) for v in re.findall(r'font-size="([\d.]+)"', svg)]
    assert sizes and min(sizes) >= 12, f"schematic text below 12 units: {min(sizes)}"
