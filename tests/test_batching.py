"""The engine's collator pads exactly as `DataCollatorWithPadding` does, on either side."""

from __future__ import annotations

import pytest
import torch
from transformers import DataCollatorWithPadding

from mikiwame.framework.batching import EncodedTexts, PadToLongest
from mikiwame.framework.errors import ConfigError
from mikiwame.framework.tokenization import tokenize_texts
from mikiwame.plugins.models.tiny import build_vocabulary, japanese_tokenizer

TEXTS = ["日銀が追加利上げを決定", "円安", "新型スマートフォンの発売日が決まり、予約が始まった", "W杯予選で日本が勝利"]


def items(tokenizer) -> list[dict]:
    columns = tokenize_texts(tokenizer, TEXTS, None)
    columns["token_type_ids"] = [[0] * len(ids) for ids in columns["input_ids"]]  # BERT pairs have them
    encoded = EncodedTexts(columns, [2, 0, 1, 3])
    return [encoded[i] for i in range(len(encoded))]


@pytest.mark.parametrize("side", ["right", "left"])
def test_pad_to_longest_equals_the_transformers_collator(side):
    tokenizer = japanese_tokenizer(build_vocabulary(TEXTS, 100))
    tokenizer.padding_side = side
    tokenizer._pad_token_type_id = 1  # a pad value unlike the attention mask's (the property has no setter)
    batch = items(tokenizer)
    assert len({len(item["input_ids"]) for item in batch}) > 1
    ours = PadToLongest(tokenizer)(batch)
    theirs = DataCollatorWithPadding(tokenizer, return_tensors="pt")(batch)
    assert set(ours) == set(theirs) == {"input_ids", "token_type_ids", "attention_mask", "labels", "index"}
    for key in theirs:
        assert ours[key].dtype == theirs[key].dtype == torch.int64, key
        assert torch.equal(ours[key], theirs[key]), key


def test_a_tokenizer_without_a_padding_token_is_refused_by_name():
    tokenizer = japanese_tokenizer(build_vocabulary(TEXTS, 100))
    tokenizer.pad_token = None
    with pytest.raises(ConfigError, match="BertJapaneseTokenizer has no padding token"):
        PadToLongest(tokenizer)


def test_a_column_shorter_than_the_ids_is_refused():
    tokenizer = japanese_tokenizer(build_vocabulary(TEXTS, 100))
    batch = items(tokenizer)
    batch[1]["attention_mask"] = batch[1]["attention_mask"][:-1]
    with pytest.raises(ValueError, match="'attention_mask' is not as long as input_ids"):
        PadToLongest(tokenizer)(batch)
