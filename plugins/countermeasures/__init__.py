"""Built-in countermeasures, one module per kind of finding they cure (`*_cures`: the analyzers' own plugin
names are taken): shortcut, entity_bias, overfitting, imbalance. Each registers through
`mikiwame_register_countermeasures` (framework/countermeasure.py)."""
