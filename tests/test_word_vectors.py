"""Pre-trained word vectors (`--word-vectors`, `--model vectors-lr`) on small tables written here: the lookup and
its fallbacks, the cache, the initialised rows, frozen embeddings, and run directories that reload and predict
identically. The real GiNZA table only in the slow test, skipped where the `vectors` extra is not installed."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import BertForSequenceClassification

from mikiwame.framework.config import RunConfig
from mikiwame.framework.errors import ConfigError, RunDirectoryError
from mikiwame.framework.plugins import build_plugin_set
from mikiwame.framework.predict import RunPredictor
from mikiwame.framework.runner import run
from mikiwame.framework.splits import subsample_train
from mikiwame.plugins.models.tiny import MeanPooledBertForSequenceClassification
from mikiwame.plugins.models.vectors_lr import CS, VectorsLogisticRegression
from mikiwame.plugins.models.word_vectors import (
    VECTOR_STD_FACTOR,
    GinzaTable,
    TextTable,
    frequent_words,
    projection,
    word_vectors,
)

from .conftest import labelled_rows, one_torch_thread, tiny_config, write_vector_table

HEADLINES = Path(__file__).resolve().parents[1] / "data" / "headlines" / "headlines.tsv"


def headline_texts() -> list[str]:
    lines = HEADLINES.read_text(encoding="utf-8").splitlines()
    column = lines[0].split("\t").index("text")
    return [line.split("\t")[column] for line in lines[1:]]


@pytest.fixture(scope="module")
def headline_table(tmp_path_factory) -> Path:
    return write_vector_table(tmp_path_factory.mktemp("vectors") / "headlines.txt", headline_texts())


def write_table(path: Path, rows: dict[str, list[float]]) -> Path:
    path.write_text("".join(f"{w} {' '.join(map(str, v))}\n" for w, v in rows.items()), encoding="utf-8")
    return path


def predicted_again(run_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    rows = [json.loads(line) for line in (run_dir / "predictions.jsonl").open(encoding="utf-8")]
    predictor = RunPredictor(run_dir, build_plugin_set())
    saved = np.array([[r["probabilities"][label] for label in predictor.labels] for r in rows])
    return saved, predictor.probabilities([r["text"] for r in rows]).numpy()


def test_lookup_tries_surface_dictionary_form_nfkc_then_lower_case(tmp_path):
    rows = {"東京": [1, 0, 0], "食べる": [0, 1, 0], "ABC": [0, 0, 1], "apple": [1, 1, 0], "食べ": [9, 9, 9]}
    table = write_table(tmp_path / "t.txt", rows)
    words = ["東京", "食べ", "食べた", "ＡＢＣ", "Ａｐｐｌｅ", "ぬばたまの"]
    got = word_vectors(str(table), words, cache_dir=tmp_path / "cache")
    assert got.found_by == ["surface", "surface", None, "NFKC", "lower case", None]
    expected = [rows["東京"], rows["食べ"], [0, 0, 0], rows["ABC"], rows["apple"], [0, 0, 0]]
    np.testing.assert_array_equal(got.vectors, np.asarray(expected, dtype=np.float32))
    assert got.coverage()["found"] == 4
    dictionary = word_vectors(str(table), ["食べ"], cache_dir=tmp_path / "cache")
    assert dictionary.found_by == ["surface"]
    del rows["食べ"]
    only_lemma = word_vectors(str(write_table(tmp_path / "u.txt", rows)), ["食べ"], cache_dir=tmp_path / "cache")
    assert only_lemma.found_by == ["dictionary form"] and only_lemma.vectors[0].tolist() == rows["食べる"]


def test_lookups_are_cached_as_safetensors_and_a_changed_table_is_read_again(tmp_path):
    table = write_table(tmp_path / "t.txt", {"猫": [1.0, 2.0], "犬": [3.0, 4.0]})
    cache = tmp_path / "cache"
    first = word_vectors(str(table), ["猫", "犬", "鳥"], cache_dir=cache)
    files = list((cache / "word_vectors").glob("*.safetensors"))
    assert len(files) == 1
    again = word_vectors(str(table), ["猫", "犬", "鳥"], cache_dir=cache)
    np.testing.assert_array_equal(first.vectors, again.vectors)
    assert (again.found_by, again.source) == (first.found_by, first.source)
    write_table(table, {"猫": [5.0, 6.0], "犬": [3.0, 4.0], "鳥": [7.0, 8.0]})
    changed = word_vectors(str(table), ["猫", "犬", "鳥"], cache_dir=cache)
    assert changed.vectors.tolist() == [[5.0, 6.0], [3.0, 4.0], [7.0, 8.0]]
    assert frequent_words(str(table), 2, cache_dir=cache) == ["猫", "犬"]


def test_bad_tables_and_a_missing_extra_are_one_clear_error(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match=r"neither ja-ginza nor an existing file(.|\n)*mikiwame\[vectors\]"):
        word_vectors(str(tmp_path / "absent.txt"), ["猫"])
    with pytest.raises(ConfigError, match=r"ragged\.txt: rows of 2 different lengths"):
        TextTable(write_table(tmp_path / "ragged.txt", {"猫": [1.0], "犬": [1.0, 2.0]}))
    (tmp_path / "words.txt").write_text("猫 1.0 x\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"words\.txt:1"):
        TextTable(tmp_path / "words.txt")
    monkeypatch.setitem(sys.modules, "ja_ginza", None)  # as where the extra is not installed
    with pytest.raises(ConfigError, match=r"needs the ja-ginza package(.|\n)*pip install 'mikiwame\[vectors\]'"):
        GinzaTable()


def test_projection_is_deterministic_pca_at_the_asked_scale():
    vectors = np.random.default_rng(0).standard_normal((50, 12)).astype(np.float32)
    projected = projection(vectors, 4, 0.1)
    assert projected.shape == (50, 4) and projected.std() == pytest.approx(0.1, rel=1e-5)
    np.testing.assert_array_equal(projected, projection(vectors.copy(), 4, 0.1))
    variances = projected.var(axis=0)
    assert np.all(np.diff(variances) <= 0)  # principal components, largest first
    wide = projection(vectors[:3], 8, 0.1)
    assert not wide[:, 3:].any()  # past the rank: zeros


def test_initialised_rows_equal_the_projected_vectors_and_the_rest_stay_random(tmp_path, headline_table):
    config = tiny_config(tmp_path, options={"init_vectors": str(headline_table), "embedding_lr_scale": 0.5})
    plugins = build_plugin_set()
    data = subsample_train(plugins.tasks.get("headlines").load(config), config.train_size, config.seed)
    loaded = plugins.models.get("tiny").load(config, data)
    vocab = loaded.tokenizer.vocab
    info = loaded.initialisation["word_vectors"]
    words = [w for w in vocab if not w.startswith("##") and not (w.startswith("[") and w.endswith("]"))]
    looked_up = word_vectors(str(headline_table), words)
    found = looked_up.found()
    assert info["initialised"] == found.sum() > 0 and info["whole_words"] == len(words)
    weights = loaded.model.bert.embeddings.word_embeddings.weight.detach().numpy()
    assert info["std"] == pytest.approx(loaded.model.config.initializer_range * VECTOR_STD_FACTOR)
    expected = projection(looked_up.vectors[found], weights.shape[1], info["std"])
    initialised = [vocab[w] for w, hit in zip(words, found, strict=True) if hit]
    np.testing.assert_allclose(weights[initialised], expected, rtol=1e-6, atol=1e-7)
    torch.manual_seed(config.seed)
    random_rows = BertForSequenceClassification(loaded.model.config).bert.embeddings.word_embeddings.weight
    rest = sorted(set(range(len(vocab))) - set(initialised))
    assert any(vocab_word.startswith("##") for vocab_word in vocab)
    np.testing.assert_array_equal(weights[rest], random_rows.detach().numpy()[rest])
    assert loaded.lr_scales == {"word_embeddings": 0.5}
    assert f"{info['initialised']} of {info['whole_words']}" in loaded.notes[0]


@pytest.fixture(scope="module")
def frozen_vectors_run(tmp_path_factory, headline_table) -> Path:
    options = {"init_vectors": str(headline_table), "embedding_lr_scale": 0.0, "tiny_pooling": "mean"}
    with one_torch_thread():
        return run(tiny_config(tmp_path_factory.mktemp("runs"), epochs=2, options=options))


def test_an_initialised_run_reloads_predicts_identically_and_records_its_source(frozen_vectors_run):
    saved, again = predicted_again(frozen_vectors_run)
    np.testing.assert_allclose(again, saved, atol=2e-6)
    model = RunPredictor(frozen_vectors_run, build_plugin_set()).model
    assert isinstance(model, MeanPooledBertForSequenceClassification) and model.bert.pooler is None
    info = json.loads((frozen_vectors_run / "model_info.json").read_text(encoding="utf-8"))
    vectors = info["initialisation"]["word_vectors"]
    assert vectors["licence"].startswith("unknown") and vectors["initialised_share"] > 0.5
    assert info["learning_rate_multipliers"] == {"word_embeddings": 0.0}
    assert "word vectors" in info["pretraining_data"] or "word embeddings" in info["pretraining_data"]


def test_a_zero_embedding_learning_rate_keeps_the_initial_embeddings(frozen_vectors_run):
    config = RunConfig.load(frozen_vectors_run / "config.json")
    plugins = build_plugin_set()
    data = subsample_train(plugins.tasks.get("headlines").load(config), config.train_size, config.seed)
    initial = plugins.models.get("tiny").load(config, data).model.bert.embeddings
    trained = RunPredictor(frozen_vectors_run, plugins).model.bert.embeddings.cpu()  # on the GPU where there is one
    torch.testing.assert_close(trained.word_embeddings.weight, initial.word_embeddings.weight, rtol=0, atol=0)
    assert not torch.equal(trained.position_embeddings.weight, initial.position_embeddings.weight)


def test_mean_pooling_reads_the_mean_of_the_text_positions_whatever_the_padding(tmp_path):
    config = tiny_config(tmp_path, options={"tiny_pooling": "mean"})
    plugins = build_plugin_set()
    data = subsample_train(plugins.tasks.get("headlines").load(config), config.train_size, config.seed)
    loaded = plugins.models.get("tiny").load(config, data)
    model = loaded.model.eval()
    texts = ["東京で会見", "大阪の新しい駅が来年開業する予定と発表"]
    encoded = loaded.tokenizer(texts, padding=True, return_tensors="pt")
    alone = loaded.tokenizer(["東京で会見"], return_tensors="pt")
    assert encoded["attention_mask"][0].sum() < encoded["attention_mask"].shape[1]  # the first text is padded
    with torch.no_grad():
        together = model(**encoded).logits[0]
        by_itself = model(**alone).logits[0]
        hidden = model.bert(**alone).last_hidden_state[0]
    torch.testing.assert_close(together, by_itself, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(by_itself, model.classifier(hidden.mean(dim=0)), rtol=1e-5, atol=1e-5)
    bad = tiny_config(tmp_path, options={"tiny_pooling": "max"})
    with pytest.raises(ConfigError, match="--tiny-pooling 'max'"):
        plugins.models.get("tiny").load(bad, data)


def test_vectors_lr_saves_no_pickle_and_predicts_identically_after_reloading(tmp_path):
    rows = labelled_rows()
    data = tmp_path / "data.tsv"
    data.write_text("text\tlabel\n" + "".join(f"{t}\t{label}\n" for t, label in rows), encoding="utf-8")
    table = write_vector_table(tmp_path / "table.txt", [t for t, _ in rows[::2]], dim=8)  # half the words miss
    config = RunConfig(
        task="csv", data=str(data), model="vectors-lr", output_dir=str(tmp_path / "runs"), train_size=12,
        options={"init_vectors": str(table)},
    )  # fmt: skip
    run_dir = run(config)
    saved, again = predicted_again(run_dir)
    np.testing.assert_allclose(again, saved, atol=1e-6)
    assert {p.suffix for p in (run_dir / "model").iterdir()} == {".json", ".safetensors"}
    info = json.loads((run_dir / "model_info.json").read_text(encoding="utf-8"))
    assert info["C"] > 0 and 0 < info["initialisation"]["word_vectors"]["word_coverage"] < 1
    assert info["C_chosen_by"] == "validation accuracy"
    assert json.loads((run_dir / "metrics.json").read_text())["model"]["peft"] == "vectors-lr"
    (run_dir / "model" / "vectors_lr.json").write_text("{", encoding="utf-8")
    with pytest.raises(RunDirectoryError, match="vectors_lr.json of this run is damaged: not valid JSON"):
        build_plugin_set().models.get("vectors-lr").load_saved(run_dir / "model")


def test_vectors_lr_takes_the_c_best_on_validation_and_cross_validates_without_a_validation_split(tmp_path):
    rows = labelled_rows()
    texts, names = [t for t, _ in rows], sorted({label for _, label in rows})
    labels = [names.index(label) for _, label in rows]
    table = write_vector_table(tmp_path / "table.txt", texts, dim=8)
    train, held_out = list(range(0, len(rows), 2)), list(range(1, len(rows), 2))
    validation = ([texts[i] for i in held_out], [labels[i] for i in held_out])
    chosen = VectorsLogisticRegression(len(names), str(table), validation=validation)
    chosen.fit([texts[i] for i in train], [labels[i] for i in train])
    features = chosen._features(validation[0])
    accuracies = {
        c: (chosen._logistic_regression(c).fit(chosen._features([texts[i] for i in train]), [labels[i] for i in train])
            .predict(features) == validation[1]).mean()
        for c in CS
    }  # fmt: skip
    assert chosen.chosen_by == "validation accuracy"
    best = max(accuracies.values())
    smallest_best = min(c for c, accuracy in accuracies.items() if accuracy == best)
    assert chosen.lr.get_params()["C"] == smallest_best
    crossed = VectorsLogisticRegression(len(names), str(table), validation=([], []))
    crossed.fit([texts[i] for i in train], [labels[i] for i in train])
    assert "cross-validation on the training split" in crossed.chosen_by


@pytest.mark.slow
def test_the_ginza_table_finds_japanese_words_with_its_licence(tmp_path):
    pytest.importorskip("ja_ginza", reason="needs the vectors extra: pip install 'mikiwame[vectors]'")
    got = word_vectors("ja-ginza", ["東京", "食べ", "ｽﾏﾎ", "ぬばたまの"], cache_dir=tmp_path)
    assert got.vectors.shape == (4, 300)
    assert got.found_by[:3] == ["surface", "dictionary form", "NFKC"] and got.found_by[3] is None
    assert "chiVe" in got.source["attribution"] and "Apache" in got.source["licence"]
    assert frequent_words("ja-ginza", 3, cache_dir=tmp_path) == ["の", "、", "て"]
    similar, unrelated = (float(got.vectors[0] @ v) for v in word_vectors("ja-ginza", ["大阪", "ぬ"]).vectors)
    assert similar > unrelated
