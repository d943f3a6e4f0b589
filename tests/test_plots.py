"""Japanese in matplotlib figures: a system CJK font when there is one, else the IPAexGothic that the
matplotlib-fontja dependency bundles, so a fresh Colab or slim image draws words, not empty boxes."""

from __future__ import annotations

import json

import pytest
from matplotlib import font_manager
from matplotlib.ft2font import FT2Font

from mikiwame.framework import plots


def test_without_a_system_cjk_font_the_bundled_one_draws_japanese(monkeypatch):
    without_cjk = [f for f in font_manager.fontManager.ttflist if f.name not in plots.CJK_FONTS]
    monkeypatch.setattr(font_manager.fontManager, "ttflist", without_cjk)
    assert plots.cjk_font() == plots.cjk_font() == "IPAexGothic"
    assert sum(f.name == "IPAexGothic" for f in font_manager.fontManager.ttflist) == 1  # registered once
    with plots.japanese_text() as font:
        path = font_manager.findfont(font_manager.FontProperties(family=font), fallback_to_default=False)
    assert path.endswith("ipaexg.ttf")
    assert all(FT2Font(path).get_char_index(ord(c)) for c in "外務省が国際会議へ")  # every glyph is in the font


JAPANESE_LABELS = ["経済", "スポーツ", "天気"]
MATRIX = [[3, 1, 0], [0, 4, 1], [1, 0, 2]]


def test_confusion_matrix_draws_japanese_labels_with_a_cjk_font_and_warns_without_one(tmp_path, monkeypatch):
    with_font = tmp_path / "with.png"
    assert plots.save_confusion_matrix(MATRIX, JAPANESE_LABELS, with_font, "test") is None
    monkeypatch.setattr(plots, "cjk_font", lambda: None)
    without = tmp_path / "without.png"
    warning = plots.save_confusion_matrix(MATRIX, JAPANESE_LABELS, without, "test")
    assert warning == plots.NO_CJK_FONT.format(path=f"{tmp_path.name}/without.png")
    assert with_font.read_bytes() != without.read_bytes()  # glyphs, not the default font's empty boxes
    assert plots.save_confusion_matrix(MATRIX, ["a", "b", "c"], tmp_path / "ascii.png", "test") is None  # control


def test_a_run_without_a_cjk_font_says_so_in_its_notices(tmp_path, monkeypatch, capsys):
    from mikiwame.framework.runner import run

    from .conftest import tiny_config

    data = tmp_path / "data.tsv"
    texts = ["株価が上昇した", "選手が勝利した", "明日は雨の予報"]
    rows = [f"{texts[i % 3]}({i}件目)\t{JAPANESE_LABELS[i % 3]}\n" for i in range(30)]
    data.write_text("text\tlabel\n" + "".join(rows), encoding="utf-8")
    monkeypatch.setattr(plots, "cjk_font", lambda: None)
    run_dir = run(tiny_config(tmp_path / "runs", model="tfidf-lr", task="csv", data=str(data), train_size=None))
    notices = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))["notices"]
    warned = [n for n in notices if n["level"] == "warning" and "confusion_matrix.png" in n["text"]]
    assert len(warned) == 1 and "no font with Japanese glyphs" in warned[0]["text"]
    assert "confusion_matrix.png" in capsys.readouterr().err


def japanese_figure():
    fig, ax = plots.plt.subplots()
    ax.plot([0, 1], [0, 1], label="検証")
    ax.set(title="学習曲線", xlabel="epoch")
    ax.legend()
    return fig


def test_every_saved_figure_sets_its_japanese_text_in_the_cjk_font(tmp_path, monkeypatch):
    """Not only figures drawn inside `japanese_text`: a curve or calibration plot with a Japanese run name or
    label gets the font at saving, and its other text keeps the default."""
    fig = japanese_figure()
    texts = {t.get_text(): t for t in fig.findobj(plots.Text)}
    assert plots.save_figure(fig, tmp_path / "with.png") is None
    font = plots.cjk_font()
    assert texts["学習曲線"].get_fontfamily() == [font] and texts["検証"].get_fontfamily() == [font]
    assert texts["epoch"].get_fontfamily() != [font]  # the control: ASCII text is left alone
    monkeypatch.setattr(plots, "cjk_font", lambda: None)
    monkeypatch.setattr(plots, "_warned_no_cjk_font", [])
    with pytest.warns(plots.NoCjkFontWarning) as given:
        first = plots.save_figure(japanese_figure(), tmp_path / "without.png")
        second = plots.save_figure(japanese_figure(), tmp_path / "again.png")
    assert len(given) == 1 and first == plots.NO_CJK_FONT.format(path=f"{tmp_path.name}/without.png")
    assert second == plots.NO_CJK_FONT.format(path=f"{tmp_path.name}/again.png")  # returned every time, warned once
    assert (tmp_path / "with.png").read_bytes() != (tmp_path / "without.png").read_bytes()
