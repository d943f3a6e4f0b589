"""`mikiwame report RUN_DIR --format html`: one self-contained page with every section, an outside plugin's too,
written atomically; and the page as a real browser (headless Chromium) renders it: every section visible, the
failures filter works, no console errors, Japanese drawn in a CJK font. MIKIWAME_UPDATE_SCREENSHOT=1 saves the
screenshots to docs/img/."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from rich.text import Text

from mikiwame.framework import hookimpl
from mikiwame.framework.cli import main
from mikiwame.framework.plugins import build_plugin_set
from mikiwame.framework.results import ReportSection, RunResults
from mikiwame.framework.runner import collect_sections, run

from .conftest import REPO, tiny_config

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
SCREENSHOT_ENV = "MIKIWAME_UPDATE_SCREENSHOT"
CJK_FAMILIES = ("CJK", "JP", "IPA", "Hiragino", "Yu Gothic", "Meiryo")
ANALYZERS = ["errors", "token-stats", "curves", "shortcuts", "entity-bias", "calibration"]


class OutsidePlugin:
    """A test-only plugin whose sections bring no HTML: one with a rich renderable, one with data only."""

    @hookimpl
    def mikiwame_report_sections(self, results):
        return [
            ReportSection(
                "outside_rich", "Outside plugin (rich)", 95, {"x": 1}, lambda: Text("rich-only section 外部")
            ),
            ReportSection("outside_data", "Outside plugin (data)", 96, {"marker": "data-only-section"}),
        ]


def render_html(run_dir: Path, extra=()) -> tuple[str, list[ReportSection]]:
    plugins = build_plugin_set(extra)
    results = RunResults.load(run_dir)
    sections = collect_sections(plugins, results)
    path = plugins.reporters.get("html").render(results, sections)
    assert path == run_dir / "report.html"
    return path.read_text(encoding="utf-8"), sections


@pytest.fixture(scope="module")
def analysed_run(tmp_path_factory) -> Path:
    """A tiny run on the bundled headlines that learns something in a few seconds, with every report analyzer."""
    options = {"shortcuts_steps": 16, "entity_bias_max_texts": 96}
    config = tiny_config(
        tmp_path_factory.mktemp("html"),
        epochs=10,
        train_size=None,
        lr=3e-3,
        batch_size=16,
        tiny_hidden=64,
        tiny_vocab_size=2000,
        max_length=48,
        patience=10,
        track_train=True,
        analyze=ANALYZERS,
        options=options,
    )
    return run(config)


def test_html_report_is_self_contained_with_every_section(finished_run, tmp_path, capsys):
    run_dir = shutil.copytree(finished_run, tmp_path / finished_run.name)
    assert main(["report", str(run_dir), "--format", "html"]) == 0
    assert capsys.readouterr().out.strip() == str(run_dir / "report.html")
    page, sections = render_html(run_dir, [("outside", OutsidePlugin())])
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.I), "page refers to the network"
    assert all("data:" in link for link in re.findall(r"<link[^>]*>", page)), "page links an outside file"
    assert "<img" in page and 'src="data:image/png;base64,' in page
    for section in sections:
        assert f'<section id="section-{section.name}">' in page
        assert f'href="#section-{section.name}"' in page
    assert {"model", "before_after", "confusion_matrix", "outside_rich", "outside_data"} <= {s.name for s in sections}
    assert "rich-only section 外部" in page  # rich's HTML export of a section without `html`
    assert "data-only-section" in page  # a section with neither renderer shows its data
    assert "FALLBACK MODEL" not in page


def test_fallback_model_is_announced_loudly(finished_run, tmp_path):
    run_dir = shutil.copytree(finished_run, tmp_path / finished_run.name)
    info = json.loads((run_dir / "model_info.json").read_text(encoding="utf-8"))
    info.update(fallback=True, fallback_reason="hub unreachable: the tiny model was trained instead")
    (run_dir / "model_info.json").write_text(json.dumps(info), encoding="utf-8")
    page, _ = render_html(run_dir)
    assert re.search(r'<div class="banner" role="alert">FALLBACK MODEL: hub unreachable', page)


def test_report_is_replaced_atomically(finished_run, tmp_path, monkeypatch):
    run_dir = shutil.copytree(finished_run, tmp_path / finished_run.name)
    first, _ = render_html(run_dir)

    def failing_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        render_html(run_dir)
    assert (run_dir / "report.html").read_text(encoding="utf-8") == first
    assert [p.name for p in run_dir.iterdir() if p.name.startswith(".report.html")] == []


def test_analyzer_sections_escape_data_and_box_a_flagged_shortcut(analysed_run, tmp_path):
    """Without a browser: every analyzer's HTML renderer runs; text from the data is escaped, never markup; a
    flagged shortcut's examples show the unit boxed."""
    run_dir = shutil.copytree(analysed_run, tmp_path / analysed_run.name)
    hostile = '<script>alert("x")</script> & 円'
    errors_path = run_dir / "analyses" / "errors.json"
    errors = json.loads(errors_path.read_text(encoding="utf-8"))
    # The first split with a failure: a run that fits its training split has none there.
    pair = next(p for split in errors["errors"].values() for p in split["pairs"] if p["examples"])
    pair["examples"][0]["text"] = hostile
    errors_path.write_text(json.dumps(errors, ensure_ascii=False), encoding="utf-8")
    shortcuts_path = run_dir / "analyses" / "shortcuts.json"
    shortcuts = json.loads(shortcuts_path.read_text(encoding="utf-8"))
    example = shortcuts["attributed_examples"][0]
    start, end, _ = example["words"][0]
    flagged = {
        "unit": example["text"][start:end],
        "label": example["predicted"],
        "support": 12,
        "attribution_share": {"mean": 0.4, "low": 0.3, "high": 0.5, "n": 12},
        "train_count": 10,
        "train_purity": 0.9,
        "deletion_flip_rate": {"k": 8, "n": 12, "rate": 0.67, "low": 0.39, "high": 0.86},
        "deletion_probability_drop": {"mean": 0.3, "low": 0.2, "high": 0.4, "n": 12},
        "flagged": True,
        "examples": [{"text": example["text"], "spans": [[start, end]], "words": example["words"]}],
    }
    shortcuts["candidates"] = shortcuts["flagged"] = [flagged]
    shortcuts_path.write_text(json.dumps(shortcuts, ensure_ascii=False), encoding="utf-8")

    page, sections = render_html(run_dir)
    assert {"errors", "error_slices", "curves", "shortcuts", "entity-bias", "token-stats", "calibration"} <= {
        s.name for s in sections
    }
    assert '<script>alert("x")' not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; 円" in page
    shortcut_section = page.split('<section id="section-shortcuts">')[1].split("</section>")[0]
    assert 'class="word marked"' in shortcut_section
    assert "no shortcut flagged" not in shortcut_section


# ---------------------------------------------------------------- in a browser


@pytest.fixture(scope="module")
def browser():
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.skip(f"{', '.join(missing)} absent: install Debian's `chromium` and `chromium-driver` packages")
    if shutil.which("fc-list") and not subprocess.run(["fc-list", ":lang=ja"], capture_output=True).stdout.strip():
        pytest.skip("no font with Japanese glyphs (fc-list :lang=ja is empty): install Debian's `fonts-noto-cjk`")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1280,900",
    ):
        options.add_argument(flag)
    profile = tempfile.mkdtemp(prefix="mikiwame-chromium-")
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def rendered_fonts(driver, css_selector: str) -> dict[str, int]:
    """The platform fonts Chromium really drew the element's text with (DevTools), family → glyph count."""
    root = driver.execute_cdp_cmd("DOM.getDocument", {"depth": 0})["root"]["nodeId"]
    node = driver.execute_cdp_cmd("DOM.querySelector", {"nodeId": root, "selector": css_selector})["nodeId"]
    driver.execute_cdp_cmd("CSS.enable", {})
    fonts = driver.execute_cdp_cmd("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]
    return {f["familyName"]: f["glyphCount"] for f in fonts}


def screenshot(driver, path: Path, height: int) -> None:
    """The top `height` pixels of the page, 1280 wide, in 256 colours (a few hundred KB for docs/img)."""
    from PIL import Image

    driver.set_window_size(1280, height)
    driver.execute_script("window.scrollTo(0, 0)")
    Image.open(io.BytesIO(driver.get_screenshot_as_png())).convert("RGB").quantize(256).save(path, optimize=True)


def test_report_renders_in_chromium(browser, analysed_run, tmp_path):
    from selenium.webdriver.common.by import By

    page, sections = render_html(analysed_run)
    browser.get((analysed_run / "report.html").as_uri())
    for section in sections:
        element = browser.find_element(By.ID, f"section-{section.name}")
        assert element.is_displayed(), section.name
        assert element.find_element(By.TAG_NAME, "h2").text == section.title
    names = {s.name for s in sections}
    assert {"errors", "error_slices", "curves", "shortcuts", "entity-bias", "token-stats", "calibration"} <= names
    assert browser.find_elements(By.CSS_SELECTOR, "#section-shortcuts .attributed .word[style*='background']")

    errors = json.loads((analysed_run / "analyses" / "errors.json").read_text(encoding="utf-8"))
    failures = [e for s in errors["errors"].values() for pair in s["pairs"] for e in pair["examples"]]
    rows = browser.find_elements(By.CSS_SELECTOR, "#failures tbody tr")
    assert len(rows) == len(failures) > 1
    query = failures[-1]["text"][:4]
    expected = sum(query in " ".join(map(str, (e["id"], e["text"], e["gold"], e["predicted"]))) for e in failures)
    assert expected < len(failures), "pick a query that some failures do not contain"
    box = browser.find_element(By.CSS_SELECTOR, "input[data-filter='failures']")
    box.send_keys(query)
    shown = [r for r in rows if r.is_displayed()]
    assert len(shown) == expected
    assert all(query in r.text for r in shown)
    assert browser.find_element(By.CSS_SELECTOR, "[data-count-for='failures']").text == (
        f"{expected} of {len(failures)} shown"
    )
    box.clear()
    box.send_keys(" ")  # an empty query shows every row again
    assert sum(r.is_displayed() for r in rows) == len(failures)

    fonts = rendered_fonts(browser, "#failures tbody tr td:nth-child(3)")
    assert fonts and all(any(k in family for k in CJK_FAMILIES) for family in fonts), (
        f"Japanese text drawn in {fonts}: no CJK font (install fonts-noto-cjk)"
    )
    severe = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert severe == []

    target = REPO / "docs" / "img" if os.environ.get(SCREENSHOT_ENV) == "1" else tmp_path
    target.mkdir(parents=True, exist_ok=True)
    screenshot(browser, target / "report-top.png", 1800)
    screenshot(browser, target / "report.png", browser.execute_script("return document.body.scrollHeight"))
    assert (target / "report.png").stat().st_size > 10_000
