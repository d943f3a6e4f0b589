"""Every model kind with every command: a run of each kind (tiny, a transformers directory, tfidf-lr, vectors-lr,
an off-the-shelf pipeline, cloze, in-context learning) trained once with every analyzer that applies to it, then
`mikiwame predict`, `mikiwame analyze` and `mikiwame report` in each format on the saved run. A cell that cannot
apply (attribution through a model without gradients) says why in one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mikiwame.framework.cli import main as cli_main
from mikiwame.framework.config import RunConfig
from mikiwame.framework.errors import ConfigError
from mikiwame.framework.runner import run
from mikiwame.plugins.models.tiny import build_vocabulary, japanese_tokenizer
from mikiwame.studies.pretraining import build_language_model

from . import tiny_lms
from .conftest import TOPICS, labelled_rows, one_torch_thread, save_sentiment_classifier, write_vector_table

ANALYZERS = ["errors", "token-stats", "curves", "calibration", "entity-bias"]
GRADIENTS = ["shortcuts"]  # attribution: only for models the engine fine-tunes
LABEL_WORDS = {"sports": "スポーツ", "economy": "経済", "weather": "天気"}
PROMPTS = {
    "templates": {"news": "「{text}」これは[MASK]のニュースです。"},
    "verbalizers": {label: [word] for label, word in LABEL_WORDS.items()},
    "icl": tiny_lms.ICL_FORMAT,
}
FINE_TUNED = ("tiny", "transformers-dir")
KINDS = (*FINE_TUNED, "tfidf-lr", "vectors-lr", "pipeline", "cloze", "icl")


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    with one_torch_thread():
        yield


def _vocabulary_texts() -> list[str]:
    sentences = [t for t, _ in labelled_rows(8)]
    return sentences + list(LABEL_WORDS.values()) + [tiny_lms.CLOZE_TEMPLATE, "見出し 分野 理由 答え N/A"]


def _language_model(directory: Path, causal: bool) -> Path:
    """A random-weight 2-layer BERT (masked) or GPT-2 (causal): the commands, not the model's skill, are tested."""
    tokenizer = japanese_tokenizer(build_vocabulary(_vocabulary_texts(), 300))
    build_language_model(tokenizer, causal, 32, 2, 2, 128, seed=0).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def _kind_options(kind: str, tmp: Path) -> dict:
    """The options of one kind, with the model files it needs written under `tmp`."""
    prompts = tmp / "prompts.json"
    prompts.write_text(json.dumps(PROMPTS, ensure_ascii=False), encoding="utf-8")
    if kind == "tiny":
        return {"model": "tiny", "peft": "full", "tiny_hidden": 32, "tiny_heads": 2, "tiny_layers": 2}
    if kind == "transformers-dir":
        return {"model": str(save_sentiment_classifier(tmp / "bert", _vocabulary_texts())), "peft": "full"}
    if kind == "vectors-lr":
        table = write_vector_table(tmp / "vectors.txt", _vocabulary_texts(), dim=8)
        return {"model": "vectors-lr", "init_vectors": str(table)}
    if kind == "pipeline":
        return {
            "model": "pipeline",
            "pipeline_model": str(save_sentiment_classifier(tmp / "sentiment", _vocabulary_texts())),
            "label_map": "NEGATIVE=sports,POSITIVE=economy",
            "neutral_label": "weather",
        }
    if kind == "cloze":
        return {"model": "cloze", "cloze_lm": str(_language_model(tmp / "mlm", False)), "prompts": str(prompts)}
    if kind == "icl":
        return {"model": "icl", "icl_lm": str(_language_model(tmp / "gpt", True)), "icl_k": 1, "prompts": str(prompts)}
    return {"model": kind}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """kind -> its finished run directory, each trained once (on first use) with every analyzer live."""
    runs: dict[str, Path] = {}

    def get(kind: str) -> Path:
        if kind not in runs:
            tmp = tmp_path_factory.mktemp(kind)
            analyzers = ANALYZERS + (GRADIENTS if kind in FINE_TUNED else [])
            runs[kind] = run(_config(tmp, kind, analyzers))
        return runs[kind]

    return get


def _config(tmp: Path, kind: str, analyzers: list[str]) -> RunConfig:
    data = tmp / "data.tsv"
    splits = ("train", "train", "validation", "test")
    data.write_text(
        "id\ttext\tlabel\tsplit\n"
        + "".join(f"r{i}\t{t}\t{y}\t{splits[i % 4]}\n" for i, (t, y) in enumerate(labelled_rows(8))),
        encoding="utf-8",
    )
    return RunConfig.of(
        task="csv", data=str(data), split_column="split", id_column="id", epochs=1, batch_size=4,
        output_dir=str(tmp / "runs"), recipe="kinds", analyze=analyzers, shortcuts_max_texts=4, shortcuts_steps=4,
        entity_bias_max_texts=4, **_kind_options(kind, tmp),
    )  # fmt: skip


def _saved_predictions(run_dir: Path) -> dict[str, dict]:
    return {p["text"]: p for p in map(json.loads, (run_dir / "predictions.jsonl").read_text("utf-8").splitlines())}


@pytest.mark.parametrize("kind", KINDS)
def test_every_analyzer_that_applies_runs_live(trained, kind):
    analyses = {p.stem for p in (trained(kind) / "analyses").glob("*.json")}
    assert analyses == set(ANALYZERS + (GRADIENTS if kind in FINE_TUNED else []))


@pytest.mark.parametrize("kind", KINDS)
def test_predict_labels_as_the_run_did(trained, kind, capsys):
    """The saved model, loaded back, gives the run's own probabilities: the same weights, mapping and band,
    template, or demonstration pool."""
    run_dir = trained(kind)
    saved = _saved_predictions(run_dir)
    texts = [t for t, p in saved.items() if p["split"] == "test"][:3]
    capsys.readouterr()
    assert cli_main(["predict", str(run_dir), *texts, "--format", "jsonl"]) == 0
    again = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [p["text"] for p in again] == texts
    for p in again:
        assert p["label"] == saved[p["text"]]["predicted"]
        for label, q in p["probabilities"].items():
            assert q == pytest.approx(saved[p["text"]]["probabilities"][label], abs=1e-4)
    assert cli_main(["predict", str(run_dir), texts[0]]) == 0
    assert saved[texts[0]]["predicted"] in capsys.readouterr().out


@pytest.mark.parametrize("kind", KINDS)
def test_analyze_on_the_saved_run(trained, kind, capsys):
    run_dir = trained(kind)
    assert cli_main(["analyze", str(run_dir), "errors,calibration"]) == 0
    errors = json.loads((run_dir / "analyses" / "errors.json").read_text("utf-8"))
    saved = _saved_predictions(run_dir)
    wrong = sum(p["predicted"] != p["gold"] for p in saved.values())
    assert sum(split["n_errors"] for split in errors["errors"].values()) == wrong


@pytest.mark.parametrize("kind", [k for k in KINDS if k not in FINE_TUNED])
def test_attribution_on_a_model_without_gradients_says_why_in_one_line(trained, kind, capsys):
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["analyze", str(trained(kind)), "shortcuts"])
    assert exit_info.value.code == 2
    message = capsys.readouterr().err.strip()
    assert len(message.splitlines()) == 1, message
    assert "needs gradients" in message and "errors" in message


def test_a_live_attribution_on_a_model_without_gradients_is_refused_before_fitting(tmp_path):
    with pytest.raises(ConfigError, match=r"^analyzer shortcuts needs gradients.*\(classifier:tfidf-lr\)"):
        run(_config(tmp_path, "tfidf-lr", ["errors", "shortcuts"]))
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("format_", ["terminal", "json", "html"])
def test_report_in_every_format(trained, kind, format_, capsys):
    run_dir = trained(kind)
    capsys.readouterr()
    assert cli_main(["report", str(run_dir), "--format", format_]) == 0
    out = capsys.readouterr().out
    if format_ == "json":
        assert set(json.loads(out)["analyses"]) >= set(ANALYZERS)
    elif format_ == "html":
        page = (run_dir / "report.html").read_text("utf-8")
        assert all(label in page for label in TOPICS)
    else:
        assert "accuracy" in out.lower()
