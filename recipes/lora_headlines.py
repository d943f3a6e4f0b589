"""Fine-tune a Japanese headline classifier with LoRA, measured before and after.

    accelerate launch recipes/lora_headlines.py                      # bundled headlines, default model
    accelerate launch recipes/lora_headlines.py --model tiny --epochs 8
    ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes 2 recipes/lora_headlines.py

Offline, the default hub model is replaced by the built-in tiny model (announced loudly); on random weights
the method becomes full fine-tuning unless --peft lora is given.
"""

from mikiwame.framework.config import DEFAULT_MODEL, RunConfig
from mikiwame.framework.recipe import recipe_main

DEFAULTS = RunConfig(task="headlines", model=DEFAULT_MODEL, peft="auto", epochs=10, batch_size=16, patience=3)


def main(argv=None):
    return recipe_main("lora_headlines", __doc__.splitlines()[0], DEFAULTS, argv)


if __name__ == "__main__":
    main()
