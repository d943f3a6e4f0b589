"""Compare PEFT methods on one task under one budget: trainable parameters, saved size, peak memory, speed, and
validation/test accuracy and macro-F1 over seeds, with paired tests.

    accelerate launch recipes/compare_peft.py --task headlines \
        --methods lora,ia3,prompt-tuning,adapter,bitfit,full,head-only
    python recipes/compare_peft.py --model tiny --seeds 2 --lr-grid "1x,3x;soft prompt=3e-2,1e-1" --train-size 300

Each training is its own process (so peak memory is per method); each method's LR is chosen on validation
macro-F1 from its grid (`Nx` = N times the method's default LR) with the first seed. All methods get the same
data, epochs (no early stopping unless --patience is given) and batch size.
"""

from mikiwame.framework.config import DEFAULT_MODEL, RunConfig
from mikiwame.studies import compare_peft

DEFAULTS = RunConfig(task="headlines", model=DEFAULT_MODEL, epochs=5, batch_size=16, patience=0)


def main(argv=None):
    return compare_peft.main(__doc__.splitlines()[0], DEFAULTS, argv)


if __name__ == "__main__":
    main()
