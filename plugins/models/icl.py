"""In-context learning with a causal LM (`--model icl --icl-lm HUB_ID_OR_DIR`): k demonstrations from the
training split, then the text; the answer is the label whose word the model gives the highest log-likelihood
after the prompt, so every answer is a valid label and no free text is parsed.

Demonstrations are chosen `random`, `balanced` (round-robin over labels) or `similar` (TF-IDF cosine to the
text) and shuffled with a seed; `--icl-cot` first generates a short reasoning greedily, then scores the label
after it. `icl_grid` measures every k, selection and seed in one go for recipes/before_after.py.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import torch

from mikiwame.framework import hookimpl
from mikiwame.framework.config import RunConfig
from mikiwame.framework.errors import ConfigError
from mikiwame.framework.metrics import accuracy_estimate, macro_f1_estimate
from mikiwame.framework.models import LoadedModel, ModelSource, describe_model
from mikiwame.framework.options import option, read_options
from mikiwame.framework.runfiles import AllOf, Between, Obj, damaged, read_json, read_jsonl
from mikiwame.framework.task import TaskData
from mikiwame.plugins.models.kept_model import keep_model, kept_model
from mikiwame.plugins.models.prompting import (
    FORMAT,
    SAVED_PROMPTS,
    IclFormat,
    PromptSpec,
    load_language_model,
    load_prompt_spec,
    scored_in_batches,
    with_instruction,
)

SELECTIONS = ("random", "balanced", "similar")
SETUP_FILE = "icl.json"
POOL_FILE = "icl_pool.jsonl"  # the demonstration pool (the training split), so a saved run prompts as it did
SETUP = AllOf(
    SAVED_PROMPTS,
    Obj(
        {
            "k": Annotated[int, Between(0, 1024)],
            "selection": str,
            "seed": Annotated[int, Between(0, 2**32 - 1)],
            "cot_tokens": Annotated[int, Between(0, 65_536)],
            "format": FORMAT,
        }
    ),
)
POOL_ROW = Obj({"text": str, "label": str})


class CausalLMScorer:
    """Log-likelihood of continuations after a prompt, on token ids (prompt and continuation are tokenized
    apart, so every label is scored on the same prompt tokens). Long prompts lose their oldest tokens."""

    def __init__(self, model: Any, tokenizer: Any, batch_size: int = 32) -> None:
        self.model, self.tokenizer, self.batch_size = model, tokenizer, batch_size
        self.max_positions = int(getattr(model.config, "n_positions", None) or model.config.max_position_embeddings)
        start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.cls_token_id
        self.start = [] if start is None else [start]
        end = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.sep_token_id
        self.end = end

    def ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"] if text else []

    def _fit(self, prompt: list[int], room: int) -> list[int]:
        keep = self.max_positions - len(self.start) - room
        return self.start + prompt[-keep:]

    def continuation_log_probs(self, prompts: Sequence[list[int]], continuations: Sequence[list[int]]) -> np.ndarray:
        """(len(prompts), len(continuations)): sum over each continuation's tokens of log P(token | before)."""
        room = max(len(c) for c in continuations)
        rows = [(i, j, self._fit(p, room), c) for i, p in enumerate(prompts) for j, c in enumerate(continuations)]
        out = np.zeros((len(prompts), len(continuations)))
        pad = self.tokenizer.pad_token_id or 0
        with torch.inference_mode():
            for start in scored_in_batches(len(rows), self.batch_size, "icl: scoring prompts"):
                batch = rows[start : start + self.batch_size]
                seqs = [p + c for _, _, p, c in batch]
                width = max(map(len, seqs))
                input_ids = torch.tensor([s + [pad] * (width - len(s)) for s in seqs])
                attention = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in seqs])
                # Only the continuation positions need the vocabulary projection (most of a long prompt's cost):
                # take the final hidden states and apply the output layer to those positions alone.
                hidden = self.model(
                    input_ids=input_ids, attention_mask=attention, output_hidden_states=True, logits_to_keep=1
                ).hidden_states[-1]
                head = self.model.get_output_embeddings()
                for b, (i, j, p, c) in enumerate(batch):
                    positions = torch.arange(len(p) - 1, len(p) + len(c) - 1)
                    logp = head(hidden[b, positions]).float().log_softmax(-1)
                    out[i, j] = logp[torch.arange(len(c)), torch.tensor(c)].sum().item()
        return out

    def generate(self, prompt: list[int], max_new_tokens: int) -> list[int]:
        """Greedy continuation (the reasoning of chain of thought), stopping at the end token."""
        ids = self._fit(prompt, max_new_tokens)
        with torch.inference_mode():
            out = self.model.generate(
                torch.tensor([ids]),
                attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                max_new_tokens=max_new_tokens,
                do_sample=False,
                eos_token_id=self.end,
                pad_token_id=self.tokenizer.pad_token_id or 0,
            )
        new = out[0, len(ids) :].tolist()
        return new[: new.index(self.end)] if self.end in new else new


class DemonstrationPicker:
    """Chooses k demonstrations for a text from the training pool; never the text itself."""

    def __init__(self, texts: list[str], labels: list[int], selection: str, seed: int) -> None:
        if selection not in SELECTIONS:
            raise ConfigError(
                f"unknown selection {selection!r}; use one of {', '.join(SELECTIONS)}", where="--icl-selection"
            )
        from sklearn.feature_extraction.text import TfidfVectorizer  # here: a second of every command's start-up

        self.texts, self.labels = texts, np.asarray(labels)
        self.selection, self.seed = selection, seed
        self.vectorizer = TfidfVectorizer(analyzer="char", ngram_range=(1, 2)).fit(texts) if texts else None
        self.matrix = self.vectorizer.transform(texts) if self.vectorizer else None

    def pick(self, text: str, k: int) -> list[int]:
        rng = np.random.default_rng([self.seed, zlib.crc32(text.encode("utf-8"))])
        allowed = np.asarray([t != text for t in self.texts], dtype=bool)
        k = min(k, int(allowed.sum()))
        if k == 0:
            return []
        if self.selection == "random":
            chosen = rng.choice(np.flatnonzero(allowed), size=k, replace=False)
        elif self.selection == "balanced":
            queues = [rng.permutation(np.flatnonzero(allowed & (self.labels == y))) for y in np.unique(self.labels)]
            queues = [queues[i] for i in rng.permutation(len(queues))]
            chosen = [q[r] for r in range(max(map(len, queues))) for q in queues if r < len(q)][:k]
        else:
            from sklearn.metrics.pairwise import cosine_similarity

            similarity = cosine_similarity(self.vectorizer.transform([text]), self.matrix)[0]
            similarity[~allowed] = -np.inf
            chosen = np.argsort(-similarity, kind="stable")[:k]
        return [int(i) for i in rng.permutation(np.asarray(chosen))]


class IclClassifier:
    """A TextClassifier whose `fit` only keeps the training split as the demonstration pool."""

    source = "icl"

    def __init__(
        self,
        scorer: CausalLMScorer,
        spec: PromptSpec,
        lm_name: str,
        k: int,
        selection: str,
        seed: int,
        cot_tokens: int = 0,
    ) -> None:
        if k < 0:
            raise ConfigError(f"--icl-k must be 0 or more, got {k}", where="--icl-k")
        self.scorer, self.spec, self.lm_name = scorer, spec, lm_name
        self.k, self.selection, self.seed, self.cot_tokens = k, selection, seed, cot_tokens
        self.labels = list(spec.verbalizers)
        self.name = f"icl:k={k},{selection}{',cot' if cot_tokens else ''} ({lm_name})"
        self.picker = DemonstrationPicker([], [], selection, seed)
        self.reasonings: dict[str, str] = {}

    def fit(self, texts: list[str], labels: list[int]) -> None:
        self.picker = DemonstrationPicker(texts, labels, self.selection, self.seed)

    def prompt(self, text: str) -> list[int]:
        fmt, ids = self.spec.icl, self.scorer.ids
        parts = ids(fmt.instruction)
        for i in self.picker.pick(text, self.k):
            word = self.spec.label_word(self.labels[self.picker.labels[i]])
            parts += ids(fmt.demonstration.format(text=self.picker.texts[i], label=word)) + ids(fmt.separator)
        if not self.cot_tokens:
            return parts + ids(fmt.query.format(text=text))
        asked = parts + ids(fmt.reasoning_query.format(text=text))
        reasoning = self.scorer.generate(asked, self.cot_tokens)
        self.reasonings[text] = self.scorer.tokenizer.decode(reasoning)
        return asked + reasoning + ids(fmt.answer)

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        from scipy.special import softmax

        words = [self.scorer.ids(self.spec.label_word(label)) for label in self.labels]
        scores = self.scorer.continuation_log_probs([self.prompt(t) for t in texts], words)
        if self.spec.score == "mean":
            scores /= np.asarray([len(w) for w in words])
        return softmax(scores, axis=1)

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        setup = {
            "lm": self.lm_name,
            "lm_files": keep_model(self.scorer.model, self.scorer.tokenizer, self.lm_name, directory, "lm"),
            "prompt_file": self.spec.source,
            "verbalizers": self.spec.verbalizers,
            "score": self.spec.score,
            "k": self.k,
            "selection": self.selection,
            "seed": self.seed,
            "cot_tokens": self.cot_tokens,
            "label_words": {label: self.spec.label_word(label) for label in self.labels},
            "format": self.spec.icl.__dict__,
            "reasonings": dict(list(self.reasonings.items())[:50]),
        }
        (directory / SETUP_FILE).write_text(json.dumps(setup, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        with (directory / POOL_FILE).open("w", encoding="utf-8") as fh:
            for text, label in zip(self.picker.texts, self.picker.labels, strict=True):
                fh.write(json.dumps({"text": text, "label": self.labels[label]}, ensure_ascii=False) + "\n")

    def describe(self) -> dict[str, Any]:
        loaded = LoadedModel(self.scorer.model, self.scorer.tokenizer, self.lm_name, self.source, pretrained=True)
        info = describe_model(loaded, self.scorer.model, "none (in-context learning)")
        info.update(name=self.name, k=self.k, selection=self.selection, chain_of_thought=bool(self.cot_tokens))
        return info


@dataclass(frozen=True)
class GridCell:
    k: int
    selection: str
    cot: bool
    seeds: list[int]
    accuracies: list[float]
    macro_f1s: list[float]
    pooled: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "selection": self.selection,
            "chain_of_thought": self.cot,
            "seeds": self.seeds,
            "accuracy_per_seed": self.accuracies,
            "macro_f1_per_seed": self.macro_f1s,
            "accuracy_mean": float(np.mean(self.accuracies)),
            "accuracy_sd": float(np.std(self.accuracies, ddof=1)) if len(self.accuracies) > 1 else 0.0,
            "accuracy_pooled": self.pooled,
        }


def icl_grid(
    scorer: CausalLMScorer,
    spec: PromptSpec,
    lm_name: str,
    train: tuple[list[str], list[int]],
    evaluate: tuple[list[str], list[int]],
    ks: Sequence[int],
    selections: Sequence[str],
    seeds: Sequence[int],
    cot_tokens: int = 0,
) -> list[GridCell]:
    """Accuracy for every k and selection over seeds (k=0 has no selection: one row). `pooled` is the Wilson
    interval of all seeds' predictions together (n = seeds x texts), not an interval over seeds."""
    texts, gold = evaluate
    cells = []
    for k in ks:
        for selection in selections[:1] if k == 0 else selections:
            accs, f1s, hits = [], [], []
            for seed in seeds[:1] if k == 0 else seeds:
                classifier = IclClassifier(scorer, spec, lm_name, k, selection, seed, cot_tokens)
                classifier.fit(*train)
                predicted = classifier.predict_proba(texts).argmax(axis=1)
                accs.append(accuracy_estimate(gold, predicted).value)
                f1s.append(macro_f1_estimate(gold, predicted, len(spec.verbalizers)).value)
                hits.extend(np.asarray(gold) == predicted)
            used = list(seeds[:1] if k == 0 else seeds)
            pooled = accuracy_estimate(np.ones(len(hits), dtype=int), np.asarray(hits, dtype=int)).to_dict()
            cells.append(GridCell(k, "none" if k == 0 else selection, bool(cot_tokens), used, accs, f1s, pooled))
    return cells


class IclSource(ModelSource):
    name = "icl"
    description = "in-context learning on a causal LM (--icl-lm): k demonstrations, label by log-likelihood"

    def load(self, config: RunConfig, task: TaskData) -> IclClassifier:
        options = read_options(IclOptions, config.options)
        prompts, instruction = config.options.get("prompts"), config.options.get("prompt_instruction", "")
        spec = with_instruction(load_prompt_spec(prompts, task.name, task.labels), instruction)
        model, tokenizer = load_language_model(options.icl_lm, "causal", "--icl-lm")
        scorer = CausalLMScorer(model.requires_grad_(False), tokenizer, config.eval_batch_size)
        return IclClassifier(
            scorer,
            spec,
            options.icl_lm,
            options.icl_k,
            options.icl_selection,
            config.seed,
            options.icl_cot_tokens,
        )

    def load_saved(self, directory: Path) -> IclClassifier:
        """The run's causal LM (its copy in the run, or its hub id), prompt format and demonstration pool: the
        demonstrations for a text depend only on the pool, the seed and the text, so a text is prompted as the
        run prompted it."""
        path = Path(directory) / SETUP_FILE
        setup = read_json(path, SETUP)
        location = kept_model(Path(directory), setup.get("lm_files"), path)
        model, tokenizer = load_language_model(location, "causal", "--icl-lm")
        form = IclFormat(**{name: setup["format"][name] for name in IclFormat.__dataclass_fields__})
        spec = PromptSpec(setup["prompt_file"], {}, setup["verbalizers"], score=setup["score"], icl=form)
        classifier = IclClassifier(
            CausalLMScorer(model.requires_grad_(False), tokenizer),
            spec,
            setup["lm"],
            setup["k"],
            setup["selection"],
            setup["seed"],
            setup["cot_tokens"],
        )
        pool = read_jsonl(Path(directory) / POOL_FILE, POOL_ROW)
        strays = sorted({row["label"] for row in pool} - set(classifier.labels))
        if strays:
            raise damaged(Path(directory) / POOL_FILE, f"labels {strays} are not the run's {classifier.labels}")
        classifier.fit([row["text"] for row in pool], [classifier.labels.index(row["label"]) for row in pool])
        return classifier


@hookimpl
def mikiwame_register_models(register):
    register(IclSource())


@dataclass
class IclOptions:
    """in-context learning (--model icl)"""

    icl_lm: str | None = option(None, "causal LM for --model icl: hub id or directory")
    icl_k: int = option(4, "demonstrations per prompt")
    icl_selection: str = option("balanced", "how demonstrations are chosen", choices=tuple(SELECTIONS))
    icl_cot_tokens: int = option(0, "chain of thought: generate this many reasoning tokens first")


@hookimpl
def mikiwame_options():
    return IclOptions
