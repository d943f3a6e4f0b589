"""Tokenize a split fast and only once: an exact fast path for `BertJapaneseTokenizer` and an on-disk cache.

`BertJapaneseTokenizer` (MeCab words, then WordPiece) has no fast version, and about four fifths of its time
is the Python WordPiece loop. The fast path keeps MeCab (same dictionary, same NFKC normalisation, wakati
output) and runs the Rust WordPiece of the `tokenizers` library on each distinct word once. It is used only
where it reproduces the slow tokenizer's ids exactly (tests/test_tokenization.py checks tricky strings, and
`benchmarks/tokenization.py` every text of two corpora); any other tokenizer is called as it is. Texts that
contain an added token such as a literal "[SEP]" go through the slow tokenizer, which splits on them.

The cache stores a split's columns keyed by the texts and a fingerprint of everything the ids depend on, so
a second run on the same data with the same vocabulary reads its ids from disk.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import unicodedata
from functools import lru_cache
from importlib import metadata
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np

Columns = dict[str, list[list[int]]]
CACHE_FORMAT = 1
MECAB_DICTIONARIES = ("unidic_lite", "unidic", "ipadic")


def default_cache_dir() -> Path | None:
    """`MIKIWAME_CACHE_DIR` (``off`` disables caching), else ``$XDG_CACHE_HOME/mikiwame`` (~/.cache/mikiwame)."""
    chosen = os.environ.get("MIKIWAME_CACHE_DIR")
    if chosen == "off":
        return None
    if chosen:
        return Path(chosen)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mikiwame"


class FastJapaneseTokenizer:
    """Same ids as a MeCab + WordPiece `BertJapaneseTokenizer` called on a list of texts, several times faster."""

    def __init__(self, tokenizer: Any) -> None:
        from tokenizers.models import WordPiece

        if not self.supports(tokenizer):
            raise ValueError(f"{type(tokenizer).__name__} is not a MeCab + WordPiece BertJapaneseTokenizer")
        self.slow = tokenizer
        words = tokenizer.word_tokenizer
        self.normalize = words.normalize_text
        dictionary = Path(words.mecab.dictionary_info[0]["filename"]).parent
        self.tagger = _wakati_tagger(str(dictionary))
        subwords = tokenizer.subword_tokenizer
        self.wordpiece = WordPiece(
            vocab=dict(tokenizer.vocab),
            unk_token=subwords.unk_token,
            max_input_chars_per_word=subwords.max_input_chars_per_word,
            continuing_subword_prefix="##",
        )
        self.added = re.compile("|".join(map(re.escape, tokenizer.get_added_vocab())) or "(?!)")
        self.pieces = _WordPieces(self.wordpiece, tokenizer.vocab, subwords.max_input_chars_per_word)
        self.cls, self.sep = tokenizer.cls_token_id, tokenizer.sep_token_id

    @staticmethod
    def supports(tokenizer: Any) -> bool:
        from transformers import BertJapaneseTokenizer

        return (
            isinstance(tokenizer, BertJapaneseTokenizer)
            and tokenizer.do_word_tokenize
            and tokenizer.word_tokenizer_type == "mecab"
            and tokenizer.do_subword_tokenize
            and tokenizer.subword_tokenizer_type == "wordpiece"
            and not tokenizer.do_lower_case
            and not tokenizer.split_special_tokens
            and not (tokenizer.mecab_kwargs or {}).get("mecab_option")
            and (tokenizer.mecab_kwargs or {}).get("mecab_dic", "unidic_lite") in MECAB_DICTIONARIES
        )

    def fingerprint(self) -> str:
        """Everything the ids depend on: vocabulary, settings, special tokens and the versions that tokenize."""
        slow = self.slow
        described = {
            "format": CACHE_FORMAT,
            "class": type(slow).__name__,
            "vocab": sorted(slow.vocab.items(), key=lambda kv: kv[1]),
            "added": sorted(slow.get_added_vocab().items()),
            "mecab": slow.mecab_kwargs,
            "normalize": self.normalize,
            "cls_sep": [slow.cls_token_id, slow.sep_token_id],
            "inputs": list(slow.model_input_names),
            "versions": [_version(p) for p in ("transformers", "tokenizers", "fugashi", "unidic-lite", "ipadic")],
        }
        return hashlib.sha256(json.dumps(described, ensure_ascii=False).encode()).hexdigest()

    def encode(self, text: str) -> list[int]:
        if self.added.search(text):
            return self.slow(text)["input_ids"]
        if self.normalize:
            text = unicodedata.normalize("NFKC", text)
        # Wakati output is the MeCab surfaces joined by spaces; splitting it on whitespace equals the slow
        # WordPiece's own whitespace split of each surface.
        words = self.tagger.parse(text).split()
        return [self.cls, *chain.from_iterable(map(self.pieces.__getitem__, words)), self.sep]

    def __call__(self, texts: list[str]) -> Columns:
        input_ids = [self.encode(text) for text in texts]
        columns: Columns = {"input_ids": input_ids}
        if "token_type_ids" in self.slow.model_input_names:
            columns["token_type_ids"] = [[0] * len(ids) for ids in input_ids]
        if "attention_mask" in self.slow.model_input_names:
            columns["attention_mask"] = [[1] * len(ids) for ids in input_ids]
        return columns


@lru_cache(maxsize=4)
def _wakati_tagger(dictionary: str) -> Any:
    """One tagger per dictionary and process: loading a dictionary costs as much as tokenizing a split."""
    import fugashi

    return fugashi.GenericTagger(f'-d "{dictionary}" -r "{Path(dictionary) / "mecabrc"}" -Owakati')


class _WordPieces(dict):
    """Word -> WordPiece ids, computed the first time a word is seen (words repeat a lot). A word that is a
    vocabulary entry is its own id, as greedy longest-match-first finds it at once; others go to Rust."""

    def __init__(self, wordpiece: Any, vocab: dict[str, int], max_chars: int) -> None:
        super().__init__()
        self.wordpiece, self.vocab, self.max_chars = wordpiece, vocab, max_chars

    def __missing__(self, word: str) -> list[int]:
        whole = self.vocab.get(word)
        if whole is not None and len(word) <= self.max_chars:
            ids = self[word] = [whole]
        else:
            ids = self[word] = [t.id for t in self.wordpiece.tokenize(word)]
        return ids


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "absent"


def tokenize_texts(tokenizer: Any, texts: list[str], cache_dir: Path | None) -> Columns:
    """The columns `tokenizer(texts)` returns (untruncated, unpadded), from the cache when it has them.

    `cache_dir` None tokenizes without a cache. Only tokenizers the fast path supports are cached: for them the
    fingerprint covers everything the ids depend on."""
    if not FastJapaneseTokenizer.supports(tokenizer):
        return {k: list(v) for k, v in tokenizer(texts).items()}
    fast = FastJapaneseTokenizer(tokenizer)
    if cache_dir is None:
        return fast(texts)
    digest = hashlib.sha256(fast.fingerprint().encode())
    for text in texts:
        digest.update(text.encode("utf-8", "surrogatepass") + b"\0")
    path = Path(cache_dir) / "tokens" / f"{digest.hexdigest()}.npz"
    if path.exists():
        return _read(path)
    columns = fast(texts)
    _write(path, columns)
    return columns


def tokenize_truncated(tokenizer: Any, texts: list[str], max_length: int) -> tuple[Columns, list[int]]:
    """The columns of `texts` (through the cache of `MIKIWAME_CACHE_DIR`), each too-long sequence cut to
    `max_length` keeping its final [SEP] as the tokenizer's own truncation does; and the untruncated lengths,
    so a caller can say which texts lost tokens. Training, evaluation and re-prediction all encode this way."""
    columns = tokenize_texts(tokenizer, texts, default_cache_dir())
    lengths = [len(ids) for ids in columns["input_ids"]]
    cut = {
        k: [seq if len(seq) <= max_length else seq[: max_length - 1] + seq[-1:] for seq in v]
        for k, v in columns.items()
    }
    return cut, lengths


def _write(path: Path, columns: Columns) -> None:
    """Atomic, so processes tokenizing the same split at once never read a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lengths = np.array([len(ids) for ids in columns["input_ids"]], dtype=np.int64)
    arrays = {k: np.fromiter((i for seq in v for i in seq), dtype=np.int32) for k, v in columns.items()}
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
    np.savez(tmp, allow_pickle=False, lengths=lengths, **arrays)  # int arrays only, so never a pickle
    os.replace(tmp, path)


def _read(path: Path) -> Columns:
    with np.load(path) as stored:
        bounds = np.concatenate([[0], np.cumsum(stored["lengths"])]).tolist()
        columns = {}
        for name in stored.files:
            if name == "lengths":
                continue
            flat = stored[name].tolist()
            columns[name] = [flat[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    return columns
