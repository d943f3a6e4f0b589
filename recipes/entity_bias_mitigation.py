"""Entity bias and accuracy before and after mitigation: the same run as given, with --entities-augment entity-swap and
with --entities-mask, each analysed with entity-bias, then compared in one table (and comparison.json).

    python recipes/entity_bias_mitigation.py --model tiny --epochs 8
    python recipes/entity_bias_mitigation.py --data my_headlines.tsv --entities my_entities.tsv
"""

from mikiwame.framework.config import RunConfig
from mikiwame.studies import entity_bias_mitigation

DEFAULTS = RunConfig(task="headlines", model="tiny", peft="auto", epochs=8, batch_size=16, patience=3)


def main(argv=None):
    return entity_bias_mitigation.main("entity_bias_mitigation", __doc__.splitlines()[0], DEFAULTS, argv)


if __name__ == "__main__":
    main()
