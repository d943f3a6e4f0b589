"""Japanese in matplotlib figures: a system CJK font when there is one, else the IPAexGothic that the
matplotlib-fontja dependency bundles, so a fresh Colab or slim image draws words, not empty boxes."""

from __future__ import annotations

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
