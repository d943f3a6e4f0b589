"""The PNGs a run directory holds: confusion matrix and training curves (matplotlib, Agg), and the helpers
analyzers draw their figures with."""

from __future__ import annotations

import importlib.util
import os
import unicodedata
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib import font_manager  # noqa: E402
from matplotlib.text import Text  # noqa: E402
from sklearn.metrics import ConfusionMatrixDisplay  # noqa: E402

#: fonts with Japanese glyphs, in order of preference; matplotlib's default (DejaVu Sans) has none
CJK_FONTS = (
    "Noto Sans CJK JP",
    "Noto Sans JP",
    "IPAexGothic",
    "IPAGothic",
    "TakaoGothic",
    "VL Gothic",
    "Source Han Sans JP",
    "Hiragino Sans",
    "Yu Gothic",
    "MS Gothic",
)
NO_CJK_FONT = (
    "matplotlib has no font with Japanese glyphs, so Japanese text in {path} is drawn as empty boxes; "
    "install one (`pip install matplotlib-fontja`, a dependency of mikiwame, or `apt install fonts-noto-cjk`) "
    "and re-run the analyzer"
)


def cjk_font() -> str | None:
    installed = {f.name for f in font_manager.fontManager.ttflist}
    found = next((name for name in CJK_FONTS if name in installed), None)
    return found or _bundled_cjk_font()


def _bundled_cjk_font() -> str | None:
    """IPAexGothic from the matplotlib-fontja package, for machines with no system CJK font (Colab, slim
    images). Registered by path: importing the package would also change matplotlib's global font family."""
    spec = importlib.util.find_spec("matplotlib_fontja")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(spec.submodule_search_locations[0]) / "fonts" / "ipaexg.ttf"
    if not path.is_file():
        return None
    font_manager.fontManager.addfont(str(path))
    return font_manager.FontProperties(fname=str(path)).get_name()


@contextmanager
def japanese_text() -> Iterator[str | None]:
    """Draw the figures made inside with a CJK font; yields its name, or None when there is none (the caller
    then says so in its result, using NO_CJK_FONT). Missing-glyph warnings are silenced: analyzers never print."""
    font = cjk_font()
    with warnings.catch_warnings(), matplotlib.rc_context({"font.family": [font] if font else ["DejaVu Sans"]}):
        warnings.filterwarnings("ignore", message=r"Glyph .* missing from")
        yield font


class NoCjkFontWarning(UserWarning):
    """Japanese text in a figure, and no font to draw it with (given once a process)."""


_warned_no_cjk_font: list[bool] = []


def save_figure(fig: Any, path: Path) -> str | None:
    """The one way a figure is saved. Every text in it with wide characters (labels, titles, legends, ticks,
    wherever it was drawn) is set in the CJK font `cjk_font` finds; with none, it returns the NO_CJK_FONT
    warning for the caller's result and gives it once a process as a NoCjkFontWarning (analyzers never print).
    Written under a name of this process's own and renamed: analyzers run on every process of a launch and save
    the same figure, and a reader must never meet a half-written PNG."""
    wide = [t for t in fig.findobj(Text) if needs_cjk_font([t.get_text()])]
    font = cjk_font() if wide else None
    for text in wide if font else []:
        text.set_fontfamily([font])
    warning = NO_CJK_FONT.format(path=f"{path.parent.name}/{path.name}") if wide and font is None else None
    if warning and not _warned_no_cjk_font:
        _warned_no_cjk_font.append(True)
        warnings.warn(warning, NoCjkFontWarning, stacklevel=2)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Glyph .* missing from")
        fig.tight_layout()
        partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
        fig.savefig(partial, dpi=120, format=path.suffix.lstrip(".") or "png")
    plt.close(fig)
    os.replace(partial, path)
    return warning


def needs_cjk_font(texts: list[str]) -> bool:
    """Whether any text has a wide (East Asian) character, which matplotlib's default font draws as a box."""
    return any(unicodedata.east_asian_width(c) in "WF" for text in texts for c in text)


def save_confusion_matrix(matrix: list[list[int]], labels: list[str], path: Path, title: str) -> str | None:
    """Drawn with a CJK font (the labels are often Japanese); returns the warning to give when the labels need
    one and there is none (NO_CJK_FONT), else None."""
    with japanese_text():
        fig, ax = plt.subplots(figsize=(1.2 + 0.8 * len(labels), 1.0 + 0.8 * len(labels)))
        ConfusionMatrixDisplay(np.asarray(matrix), display_labels=labels).plot(
            ax=ax, cmap="Blues", colorbar=False, xticks_rotation=45
        )
        ax.set_title(title)
        return save_figure(fig, path)


def save_training_curves(history: list[dict[str, Any]], path: Path) -> None:
    epochs = [h["epoch"] for h in history]
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(9, 3.5))
    loss_ax.plot(epochs, [h["train_loss"] for h in history], marker="o", label="train")
    if all("validation_loss" in h for h in history):
        loss_ax.plot(epochs, [h["validation_loss"] for h in history], marker="o", label="validation")
        acc_ax.plot(epochs, [h["validation_accuracy"] for h in history], marker="o", color="C1")
    loss_ax.set(xlabel="epoch", ylabel="loss", title="loss")
    loss_ax.legend()
    acc_ax.set(xlabel="epoch", ylabel="accuracy", title="validation accuracy", ylim=(0, 1))
    save_figure(fig, path)


def save_countermeasure_effects(rows: list[dict[str, Any]], path: Path) -> None:
    """Per countermeasure, the change of its target figure and of test accuracy with their paired 95%
    intervals (error bars), a line at no change: what `mikiwame countermeasures` concludes, as a picture."""
    names = [f"{r['countermeasure']} ({r['addresses'].get('unit') or r['addresses']['finding']})" for r in rows]
    with japanese_text():
        fig, axes = plt.subplots(1, 2, figsize=(10, 0.9 + 0.45 * len(rows)), sharey=True)
        for ax, key, title in (
            (axes[0], "target", "target figure: after − before"),
            (axes[1], "accuracy", "test accuracy: after − before"),
        ):
            delta = np.asarray([r[key]["delta"] for r in rows])
            low = delta - np.asarray([r[key]["interval"][0] for r in rows])
            high = np.asarray([r[key]["interval"][1] for r in rows]) - delta
            ax.errorbar(delta, range(len(rows)), xerr=[low, high], fmt="o", capsize=3)
            ax.axvline(0, color="grey", lw=1)
            ax.set(title=title, yticks=range(len(rows)), yticklabels=names)
            ax.invert_yaxis()
        save_figure(fig, path)
