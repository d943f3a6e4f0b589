"""The fast tokenization path gives exactly BertJapaneseTokenizer's ids, and the cache returns what it stored."""

from __future__ import annotations

import pytest

from mikiwame.framework.tables import read_rows
from mikiwame.framework.tokenization import FastJapaneseTokenizer, tokenize_texts
from mikiwame.plugins.models.tiny import japanese_tokenizer

from .conftest import REPO

HEADLINES = [row.values["text"] for row in read_rows(REPO / "data" / "headlines" / "headlines.tsv")[1]]
TRICKY = [
    "",
    " ",
    "\u3000全角スペース\u3000と半角 スペース",
    "ＡＢＣ１２３ ＡＢＣ123 abc ABC ｶﾀｶﾅ ｱｲｳｴｵ ﾊﾟﾝ",  # full-width and half-width, NFKC folds them
    "絵文字😀🎉👨‍👩‍👧 と 国旗🇯🇵",
    "未知の文字 \U0002a6b2 \ue000 ꙮ ᚠᚢᚦ",
    "長" * 150,  # one word longer than max_input_chars_per_word
    "supercalifragilisticexpialidocious" * 4,
    "Hello, World! It's 3.14 — “quotes” & <tags>",
    "２０２４年１２月３１日、午後１１時５９分",
    "改行\nと\tタブ\r\n混じり",
    "特殊トークン[SEP]の[CLS]文字列[UNK]と[MASK][PAD]",
    "①②③ ㈱ ㍻ ﬁ Ⅻ ｷﾞｬ",
    "Ünïcödé çà et là, naïve café",
]


@pytest.fixture(scope="module")
def tokenizer():
    # A small vocabulary from some headlines: other headlines and the tricky strings meet unknown words,
    # so WordPiece has to split and fall back to [UNK].
    from mikiwame.plugins.models.tiny import build_vocabulary

    return japanese_tokenizer(build_vocabulary(HEADLINES[:200], 600))


@pytest.mark.parametrize("texts", [HEADLINES, TRICKY], ids=["headlines", "tricky"])
def test_fast_path_ids_equal_bert_japanese_tokenizer(tokenizer, texts):
    fast = FastJapaneseTokenizer(tokenizer)(texts)
    slow = tokenizer(texts)
    assert fast.keys() == slow.keys()
    for key in slow:
        for text, a, b in zip(texts, fast[key], slow[key], strict=True):
            assert a == b, (key, text)


def test_tricky_strings_reach_unknown_and_split_words(tokenizer):
    ids = tokenize_texts(tokenizer, TRICKY, cache_dir=None)["input_ids"]
    flat = [i for seq in ids for i in seq]
    assert tokenizer.unk_token_id in flat
    assert any(t.startswith("##") for t in tokenizer.convert_ids_to_tokens(flat))


def test_cache_returns_the_stored_columns_and_is_keyed_by_vocabulary(tokenizer, tmp_path):
    texts = HEADLINES[:50]
    first = tokenize_texts(tokenizer, texts, cache_dir=tmp_path)
    stored = list((tmp_path / "tokens").glob("*.npz"))
    assert len(stored) == 1
    assert tokenize_texts(tokenizer, texts, cache_dir=tmp_path) == first == tokenizer(texts).data
    other = japanese_tokenizer(list(tokenizer.vocab)[:300])
    assert tokenize_texts(other, texts, cache_dir=tmp_path) == other(texts).data
    assert len(list((tmp_path / "tokens").glob("*.npz"))) == 2


def test_unsupported_tokenizers_are_called_as_they_are(tokenizer, tmp_path):
    lowered = japanese_tokenizer(list(tokenizer.vocab))
    lowered.lower_case = True
    assert not FastJapaneseTokenizer.supports(lowered)
    with pytest.raises(ValueError, match="not a MeCab"):
        FastJapaneseTokenizer(lowered)
    assert tokenize_texts(lowered, HEADLINES[:20], cache_dir=tmp_path) == lowered(HEADLINES[:20]).data
    assert not (tmp_path / "tokens").exists()
