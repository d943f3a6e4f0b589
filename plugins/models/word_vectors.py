"""Pre-trained Japanese word vectors, so that an offline model starts knowing some Japanese (`--word-vectors`).

The table is the one the `ja-ginza` package ships (GiNZA's spaCy pipeline: 300 dimensions, 20,000 rows, ~480k
surface forms; installed by `pip install 'mikiwame[vectors]'`), or a word2vec text file of the user's own.
Reading the GiNZA table means loading spaCy (seconds, ~0.5 GB), so a vocabulary's words are looked up once and
cached as safetensors under the cache dir (`MIKIWAME_CACHE_DIR`); a later run with the same words reads only
that file. Every lookup records where the vectors came from (name, version, licence, attribution), which the
run's model information carries.

A word is looked up by its surface form, then its dictionary form (MeCab's orthBase, then the lemma without
UniDic's `-English` gloss), its NFKC form and its lower-case form: the table keys surface forms as SudachiPy
splits them, which misses some of MeCab's inflected or full-width forms.
"""

from __future__ import annotations

import hashlib
import json
import os
import unicodedata
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np

from mikiwame.framework import hookimpl
from mikiwame.framework.errors import ConfigError
from mikiwame.framework.options import option
from mikiwame.framework.tokenization import default_cache_dir

GINZA = "ja-ginza"
INSTALL = "pip install 'mikiwame[vectors]'"
CACHE_FORMAT = 1
# Tuned on livedoor's validation split (docs/models.md) for the [CLS] head, where slower or frozen embeddings did
# worse than 1; with --tiny-pooling mean the recipe gives 0.1.
EMBEDDING_LR_SCALE = 1.0
# The table's most frequent words join the tiny model's vocabulary beyond --tiny-vocab-size: with 500 training
# titles a fifth of the test words are otherwise split into characters and lose their vectors.
VOCABULARY_WORDS = 20000
# Projected vectors get this many times the model's initializer_range as their standard deviation: at the
# random rows' own scale the words barely stand out from the random position embeddings they are summed with.
VECTOR_STD_FACTOR = 5.0
FOUND_BY = ("surface", "dictionary form", "NFKC", "lower case")


def _ginza_missing() -> ConfigError:
    return ConfigError(f"--word-vectors {GINZA} needs the ja-ginza package, which is not installed", fix=INSTALL)


class VectorTable(Protocol):
    """Word -> vector. `source` names the table (name, version, licence, attribution) for the model information."""

    source: dict[str, str]
    dim: int

    def get(self, key: str) -> np.ndarray | None: ...

    def frequent_words(self, limit: int) -> list[str]: ...


class GinzaTable:
    """The word-vector table of the `ja-ginza` package, read with spaCy's `Vocab` (no SudachiPy tokenizer)."""

    def __init__(self) -> None:
        try:
            import ja_ginza
            from spacy.util import get_model_meta
            from spacy.vocab import Vocab
        except ImportError:
            raise _ginza_missing() from None
        package = Path(ja_ginza.__file__).parent
        meta = get_model_meta(package)
        vocab = Vocab().from_disk(package / f"{meta['lang']}_{meta['name']}-{meta['version']}" / "vocab")
        self.strings, self.key2row, self.matrix = vocab.strings, vocab.vectors.key2row, vocab.vectors.data
        self.dim = int(self.matrix.shape[1])
        sources = "; ".join(f"{s['name']} ({s['license']}, {s['author']})" for s in meta.get("sources", []))
        self.source = {
            "name": GINZA,
            "version": meta["version"],
            "licence": f"{meta.get('license', 'unknown')} (ja_ginza package); vectors from chiVe (Apache-2.0)",
            "attribution": f"GiNZA {meta['version']} ({meta.get('author', '')}, {meta.get('url', '')}); "
            f"sources: {sources}",
            "shape": f"{self.matrix.shape[0]} rows x {self.dim}, {len(self.key2row)} keys",
        }

    def get(self, key: str) -> np.ndarray | None:
        row = self.key2row.get(self.strings[key])
        return None if row is None else np.asarray(self.matrix[row], dtype=np.float32)

    def frequent_words(self, limit: int) -> list[str]:
        """The first key of each row, by row: chiVe's rows are in corpus-frequency order (row 0 is の)."""
        heads: dict[int, str] = {}
        for key, row in self.key2row.items():
            if row < limit and row not in heads:
                heads[row] = self.strings[key]
                if len(heads) == min(limit, len(self.matrix)):
                    break
        return [heads[row] for row in sorted(heads)]


class TextTable:
    """A word2vec text file (`word v1 v2 ...` per line, an optional `count dim` first line): a user's own table,
    and the fixture tests write."""

    def __init__(self, path: Path) -> None:
        self.vectors: dict[str, np.ndarray] = {}
        with path.open(encoding="utf-8") as fh:
            for number, line in enumerate(fh, 1):
                parts = line.rstrip("\n").split(" ")
                if number == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                    continue
                try:
                    self.vectors[parts[0]] = np.asarray(parts[1:], dtype=np.float32)
                except ValueError:
                    raise ConfigError(
                        f"not a number among the values of {parts[0]!r}",
                        where=f"{path}:{number}",
                        fix="give a word2vec text file: a word and its values separated by single spaces",
                    ) from None
        dims = {len(v) for v in self.vectors.values()}
        if len(dims) != 1:
            raise ConfigError(
                f"{path}: rows of {len(dims)} different lengths ({sorted(dims)[:4]})" if dims else f"{path}: no rows",
                fix="give a word2vec text file whose rows all have the same number of values",
            )
        self.dim = dims.pop()
        stat = path.stat()
        self.source = {
            "name": str(path),
            "version": f"{stat.st_size} bytes, modified {int(stat.st_mtime)}",
            "licence": "unknown (a local file: check its own licence)",
            "attribution": str(path),
            "shape": f"{len(self.vectors)} rows x {self.dim}",
        }

    def get(self, key: str) -> np.ndarray | None:
        return self.vectors.get(key)

    def frequent_words(self, limit: int) -> list[str]:
        """In file order, which word2vec files sort by frequency."""
        return list(self.vectors)[:limit]


def open_table(name: str) -> VectorTable:
    """`ja-ginza`, or the path of a word2vec text file."""
    return _ginza() if name == GINZA else TextTable(_table_file(name))


@cache
def _ginza() -> GinzaTable:
    """Once per process: a run looks up its vocabulary and, for vectors-lr, the words of each split."""
    return GinzaTable()


def _table_file(name: str) -> Path:
    path = Path(name)
    if not path.is_file():
        raise ConfigError(
            f"--word-vectors {name!r} is neither {GINZA} nor an existing file",
            fix=f"use --word-vectors {GINZA} (after {INSTALL}) or give a word2vec text file",
        )
    return path


def _table_identity(name: str) -> str:
    """What a cached lookup depends on besides the words: the installed table's version, or the file's state."""
    if name == GINZA:
        from importlib import metadata

        try:
            return f"{GINZA}:{metadata.version('ja-ginza')}"
        except metadata.PackageNotFoundError:
            raise _ginza_missing() from None
    stat = _table_file(name).stat()
    return f"{Path(name).resolve()}:{stat.st_size}:{stat.st_mtime_ns}"


@dataclass
class WordVectors:
    """The vectors of a list of words: row i is words[i]'s, zeros where `found_by[i]` is None (a miss)."""

    words: list[str]
    vectors: np.ndarray
    found_by: list[str | None]
    source: dict[str, str]

    def found(self) -> np.ndarray:
        return np.asarray([f is not None for f in self.found_by])

    def coverage(self) -> dict[str, Any]:
        counts = {how: sum(f == how for f in self.found_by) for how in FOUND_BY}
        return {"words": len(self.words), "found": int(self.found().sum()), "found_by": counts}


@cache
def _dictionary_forms() -> Any:
    import fugashi

    tagger = fugashi.Tagger()

    def forms(word: str) -> list[str]:
        tokens = tagger(word)
        if len(tokens) != 1:
            return []
        feature = tokens[0].feature
        lemma = (getattr(feature, "lemma", None) or "").split("-")[0]
        return [f for f in (getattr(feature, "orthBase", None), lemma) if f]

    return forms


def candidates(word: str) -> list[tuple[str, str]]:
    """The keys tried for a word, in order, each with how it was derived (see FOUND_BY)."""
    normalised = unicodedata.normalize("NFKC", word)
    keys = [(word, "surface")] + [(f, "dictionary form") for f in _dictionary_forms()(word)]
    keys += [(normalised, "NFKC"), (normalised.lower(), "lower case")]
    first: dict[str, str] = {}
    for key, how in keys:
        first.setdefault(key, how)
    return list(first.items())


def lookup(table: VectorTable, words: list[str]) -> WordVectors:
    """Each word's vector by the first of its candidates the table has."""
    vectors = np.zeros((len(words), table.dim), dtype=np.float32)
    found_by: list[str | None] = []
    for i, word in enumerate(words):
        how = None
        for key, derived in candidates(word):
            vector = table.get(key)
            if vector is not None:
                vectors[i], how = vector, derived
                break
        found_by.append(how)
    return WordVectors(list(words), vectors, found_by, dict(table.source))


def word_vectors(name: str, words: list[str], cache_dir: Path | None = None) -> WordVectors:
    """`lookup` through the cache: the table is opened only when these words of this table were never looked up."""
    cache_dir = cache_dir if cache_dir is not None else default_cache_dir()
    identity = _table_identity(name)
    digest = hashlib.sha256(json.dumps([CACHE_FORMAT, identity, words], ensure_ascii=False).encode()).hexdigest()
    path = cache_dir / "word_vectors" / f"{digest}.safetensors" if cache_dir is not None else None
    if path is not None and path.exists():
        return _read(path)
    result = lookup(open_table(name), words)
    if path is not None:
        _write(path, result)
    return result


def frequent_words(name: str, limit: int, cache_dir: Path | None = None) -> list[str]:
    """The table's `limit` most frequent words, most frequent first, through the cache as `word_vectors`."""
    cache_dir = cache_dir if cache_dir is not None else default_cache_dir()
    digest = hashlib.sha256(json.dumps([CACHE_FORMAT, _table_identity(name), limit]).encode()).hexdigest()
    path = cache_dir / "word_vectors" / f"{digest}.words.json" if cache_dir is not None else None
    if path is not None and path.exists():
        return json.loads(path.read_text(encoding="utf-8"))
    words = open_table(name).frequent_words(limit)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(words, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, path)
    return words


def _write(path: Path, result: WordVectors) -> None:
    """Atomic, as the token cache: processes starting together never read a half-written file."""
    from safetensors.numpy import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp")
    metadata = {
        "words": json.dumps(result.words, ensure_ascii=False),
        "found_by": json.dumps(result.found_by, ensure_ascii=False),
        "source": json.dumps(result.source, ensure_ascii=False),
    }
    save_file({"vectors": result.vectors}, str(tmp), metadata=metadata)
    os.replace(tmp, path)


def _read(path: Path) -> WordVectors:
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as fh:
        metadata = fh.metadata()
        vectors = fh.get_tensor("vectors")
    return WordVectors(
        json.loads(metadata["words"]), vectors, json.loads(metadata["found_by"]), json.loads(metadata["source"])
    )


def projection(vectors: np.ndarray, width: int, std: float) -> np.ndarray:
    """PCA of the rows to `width` columns (zeros past the rank), scaled to the given standard deviation so that
    they sit beside randomly initialised rows and position embeddings as the model's own initialisation does.
    Deterministic: each component's sign makes its largest loading positive."""
    centred = vectors.astype(np.float64) - vectors.mean(axis=0)
    _, _, components = np.linalg.svd(centred, full_matrices=False)
    components = components[: min(width, len(components))]
    signs = np.sign(components[np.arange(len(components)), np.abs(components).argmax(axis=1)])
    projected = np.zeros((len(vectors), width))
    projected[:, : len(components)] = centred @ (components * signs[:, None]).T
    scale = projected.std()
    return (projected * (std / scale if scale > 0 else 1.0)).astype(np.float32)


def initialise_embeddings(embeddings: Any, vocab: dict[str, int], name: str, std: float) -> dict[str, Any]:
    """Overwrite the rows of whole-word vocabulary entries (not `##` pieces, not `[SPECIAL]` tokens) that the
    table has with their projected vectors; misses keep their random rows. Returns what the model information
    records: the table's provenance and the share of entries initialised."""
    import torch

    words = [w for w in vocab if not w.startswith("##") and not (w.startswith("[") and w.endswith("]"))]
    looked_up = word_vectors(name, words)
    found = looked_up.found()
    if not found.any():
        raise ConfigError(
            f"--word-vectors {name}: none of the {len(words)} vocabulary words is in the table",
            fix="give a table of Japanese words (the vocabulary is MeCab words of the training texts)",
        )
    rows = projection(looked_up.vectors[found], embeddings.weight.shape[1], std)
    ids = torch.as_tensor([vocab[w] for w, hit in zip(words, found, strict=True) if hit])
    with torch.no_grad():
        embeddings.weight[ids] = torch.as_tensor(rows, dtype=embeddings.weight.dtype)
    coverage = looked_up.coverage()
    return {
        **looked_up.source,
        "projection": f"PCA {looked_up.vectors.shape[1]} -> {embeddings.weight.shape[1]}",
        "std": std,
        "vocabulary_rows": len(vocab),
        "whole_words": coverage["words"],
        "initialised": coverage["found"],
        "initialised_share": round(coverage["found"] / max(coverage["words"], 1), 4),
        "found_by": coverage["found_by"],
    }


@dataclass
class WordVectorOptions:
    """pre-trained word vectors"""

    SHOWN_WITH: ClassVar[tuple[str, ...]] = ("tiny", "vectors-lr")  # the models that read them

    init_vectors: str | None = option(
        None,
        f"pre-trained word vectors ({GINZA}, needs {INSTALL}; or a word2vec text file): the initial word "
        "embeddings of --model tiny, the features of --model vectors-lr (default there: ja-ginza)",
        flag="--word-vectors",
    )
    embedding_lr_scale: float = option(
        EMBEDDING_LR_SCALE,
        "with --word-vectors: the word embeddings' learning rate as a multiple of --lr (0 freezes them)",
        flag="--word-vectors-lr-scale",
    )


@hookimpl
def mikiwame_options():
    return WordVectorOptions
