"""The book builds with -W from the smoke-executed notebooks, and renders in a real browser."""

from __future__ import annotations

import re
import subprocess
import sys
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
    pages = ["index.html", "book/intro.html", "book/reproduce.html", "book/references.html"]
    pages += [f"notebooks/{p.stem}.html" for p in sorted((REPO / "notebooks").glob("*.ipynb"))]
    for page in pages:
        assert (book / page).is_file(), page
    for html in book.rglob("*.html"):
        remote = re.findall(r'<(?:script|link|img)[^>]+(?:src|href)="(https?://[^"]+)"', html.read_text())
        assert not remote, f"{html.relative_to(book)} loads remote assets: {remote[:3]}"


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
        figures = page.evaluate("() => [...document.querySelectorAll('main .cell_output img')]"
                                ".map(i => [i.complete, i.naturalWidth])")
        assert figures and all(done and width > 0 for done, width in figures), f"figures did not render: {figures}"
        colab = page.eval_on_selector_all("a[href*='colab.research.google.com']", "links => links.map(a => a.href)")
        assert any(f"tlrl-book/tlrl/blob/main/notebooks/{CHAPTER}.ipynb" in href for href in colab), colab
        page.screenshot(path=str(ARTIFACTS / f"book-{CHAPTER}.png"), full_page=True)

        page.goto((book / "book" / "reproduce.html").as_uri())
        page.wait_for_load_state("load")
        text = page.inner_text("main")
        assert "make book" in text and get_profile("quick").reductions in text, "the profile table is missing"
        browser.close()
