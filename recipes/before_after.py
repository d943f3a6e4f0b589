"""Before and after fine-tuning, in one table: majority baseline, the tfidf-lr floor, zero-shot cloze (each
template, raw and calibrated), in-context learning (each k and selection, mean over seeds), an off-the-shelf
pipeline with label mapping, and fine-tuned models, all on the same test split with n and 95% intervals.

    python recipes/before_after.py --task headlines --cloze-lm runs/mlm --icl-lm runs/gpt \\
        --fine-tune tiny,runs/mlm --epochs 5 --output-dir runs/before-after

Rows whose inputs are not given are left out (no --cloze-lm: no cloze rows). A fine-tuned row that does not
beat the tfidf-lr floor (or, without it, the majority baseline) says so.
"""

from mikiwame.framework.config import RunConfig
from mikiwame.studies import before_after

DEFAULTS = RunConfig(recipe="before_after", epochs=5, peft="auto")


def main(argv=None):
    return before_after.main(__doc__.splitlines()[0], DEFAULTS, argv)


if __name__ == "__main__":
    main()
