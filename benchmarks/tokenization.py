"""mikiwame's tokenization vs BertJapaneseTokenizer (which has no fast version), on every livedoor title and
every JRTE pn.tsv review: texts/s cold (no cache), warm (disk cache) and the check that ids are identical.

    python benchmarks/tokenization.py [--data ../shared/data] [--repeats 3]

The vocabulary is the tiny model's (built from the livedoor titles, 8,000 entries), so the reviews also meet
unknown words. Ratios are against the slow tokenizer measured in the same run.
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from corpora import jrte_pn_texts, livedoor_titles, shared_data

from mikiwame.framework.runner import user_errors_exit
from mikiwame.framework.tokenization import tokenize_texts
from mikiwame.plugins.models.tiny import build_vocabulary, japanese_tokenizer


def timed(fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - start


def measure(tokenizer, texts: list[str], repeats: int) -> dict:
    mecab = tokenizer.word_tokenizer
    slow_s, cold_s, warm_s, mecab_s = [], [], [], []
    identical = True
    for _ in range(repeats):
        slow, t = timed(lambda: tokenizer(texts).data)
        slow_s.append(t)
        _, t = timed(lambda: [mecab.tokenize(x) for x in texts])
        mecab_s.append(t)
        cold, t = timed(tokenize_texts, tokenizer, texts, None)
        cold_s.append(t)
        with tempfile.TemporaryDirectory() as cache:
            tokenize_texts(tokenizer, texts, Path(cache))
            warm, t = timed(tokenize_texts, tokenizer, texts, Path(cache))
        warm_s.append(t)
        identical &= cold == slow and warm == slow
    n = len(texts)
    return {
        "texts": n,
        "identical_ids": identical,
        "slow_texts_per_s": n / statistics.median(slow_s),
        "mecab_share_of_slow": statistics.median(m / s for m, s in zip(mecab_s, slow_s, strict=True)),
        "cold_texts_per_s": n / statistics.median(cold_s),
        "warm_texts_per_s": n / statistics.median(warm_s),
        "cold_ratio": statistics.median(s / c for s, c in zip(slow_s, cold_s, strict=True)),
        "warm_ratio": statistics.median(s / w for s, w in zip(slow_s, warm_s, strict=True)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="shared corpora folder (default ../shared/data or MIKIWAME_SHARED_DATA)")
    parser.add_argument("--repeats", type=int, default=3, help="median over this many rounds")
    args = parser.parse_args()
    data = shared_data(args.data)
    titles, _ = livedoor_titles(data)
    tokenizer = japanese_tokenizer(build_vocabulary(titles, 8000))
    tokenizer.model_max_length = 10**6  # untruncated, as the runner tokenizes
    print(f"vocabulary {len(tokenizer.vocab)} entries; median of {args.repeats} rounds")
    print(
        f"{'corpus':<16}{'texts':>7}{'identical':>10}{'slow/s':>10}{'MeCab%':>8}{'cold/s':>10}{'warm/s':>10}"
        f"{'cold x':>8}{'warm x':>8}"
    )
    ok = True
    for name, texts in (("livedoor titles", titles), ("JRTE pn.tsv", jrte_pn_texts(data))):
        r = measure(tokenizer, texts, args.repeats)
        ok &= r["identical_ids"]
        print(
            f"{name:<16}{r['texts']:>7}{str(r['identical_ids']):>10}{r['slow_texts_per_s']:>10.0f}"
            f"{100 * r['mecab_share_of_slow']:>7.0f}%{r['cold_texts_per_s']:>10.0f}{r['warm_texts_per_s']:>10.0f}"
            f"{r['cold_ratio']:>7.2f}x{r['warm_ratio']:>7.2f}x"
        )
    if not ok:
        sys.exit("ids differ from BertJapaneseTokenizer")


if __name__ == "__main__":
    with user_errors_exit():
        main()
