#!/usr/bin/env bash
# The checks that need a GPU, as one script: the base-shaped BERT trained by the recipe in bf16 and in fp16 (grad
# scaler) on CUDA, the attribution benchmark, the shortcuts and entity-bias analyzers end to end against an older
# commit's, the tiny recipe in fp16, and the fast suite on a machine whose accelerator is a GPU.
#
#     bash benchmarks/gpu_checks.sh OUT_DIR [OLD_TREE]
#
# OUT_DIR receives one log per check and summary.txt. OLD_TREE, if given, is a folder holding an older commit's
# `mikiwame/` (`git archive --prefix=mikiwame/ REV | tar -x -C OLD_TREE`): its recipe trains a second run and its
# analyzers are timed on it, for the before/after ratio. Every check has its own time limit and a failed check does
# not stop the others: the summary says which failed. The "now" side is the `mikiwame` installed where it runs.
# The limits add up to more than a 10-minute device command: a check killed from outside writes no summary line.
set -u
mkdir -p "${1:?usage: gpu_checks.sh OUT_DIR [OLD_TREE]}"
out=$(cd "$1" && pwd)
old=${2:+$(cd "$2" && pwd)}
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export HF_HUB_OFFLINE=1 COLUMNS=160 PYTHONUNBUFFERED=1
cd "$repo" || exit 1

check() {  # check NAME LIMIT_S COMMAND...: run, log, time; one summary line
    local name=$1 limit=$2 start status
    shift 2
    start=$(date +%s%N)
    timeout -s INT -k 15 "$limit" "$@" >"$out/$name.log" 2>&1  # INT: pytest still prints its summary
    status=$?
    printf '%-28s exit %3d  %8d ms\n' "$name" "$status" $((($(date +%s%N) - start) / 1000000)) | tee -a "$out/summary.txt"
}

{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
    python -c 'import torch, transformers, peft, accelerate, captum; print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available(), "bf16", torch.cuda.is_available() and torch.cuda.is_bf16_supported()); print("transformers", transformers.__version__, "peft", peft.__version__, "accelerate", accelerate.__version__, "captum", captum.__version__)'
    nproc
} >"$out/summary.txt" 2>&1

# The base-shaped model (12 layers, hidden 768, 32,768 word pieces) from config, as benchmarks/attribution.py builds it.
python - "$work/model" >"$out/base-model.log" 2>&1 <<'EOF'
import sys
from pathlib import Path
sys.path.insert(0, "benchmarks")
from attribution import base_model_dir
from mikiwame.framework.config import RunConfig
from mikiwame.plugins.tasks.headlines import Headlines
data = Headlines().load(RunConfig())
base_model_dir(Path(sys.argv[1]), [e.text for e in data.split("train")])
EOF

base_recipe=(recipes/lora_headlines.py --model "$work/model" --peft lora --epochs 3)
check base-lora-bf16 240 python "${base_recipe[@]}" --mixed-precision bf16 --output-dir "$work/bf16"
check base-lora-fp16 240 python "${base_recipe[@]}" --mixed-precision fp16 --output-dir "$work/fp16"
check base-lora-fp32 240 python "${base_recipe[@]}" --mixed-precision no --output-dir "$work/fp32"
check tiny-fp16 240 python recipes/lora_headlines.py --model tiny --epochs 8 --mixed-precision fp16 --output-dir "$work/tiny"
run=$(ls -d "$work"/bf16/*/ | head -1)
for precision in bf16 fp16 fp32 tiny; do  # test accuracy before -> after, and each epoch's losses
    python - "$work/$precision" >>"$out/metrics.txt" 2>&1 <<'EOF'
import json, sys
from pathlib import Path
(run,) = Path(sys.argv[1]).iterdir()
m = json.loads((run / "metrics.json").read_text())
before, after = (m[when]["test"]["accuracy"]["value"] for when in ("before", "after"))
print(Path(sys.argv[1]).name, f"test accuracy {before:.3f} -> {after:.3f}")
for e in m["epochs"]:
    print(f"  epoch {e['epoch']}: train loss {e['train_loss']:.4f}, validation loss {e['validation_loss']:.4f}")
EOF
done

if [ -n "$old" ]; then
    check old-base-lora-bf16 240 env PYTHONPATH="$old:${PYTHONPATH:-}" python "$old/mikiwame/recipes/lora_headlines.py" \
        --model "$work/model" --peft lora --epochs 3 --mixed-precision bf16 --output-dir "$work/old"
    old_run=$(ls -d "$work"/old/*/ | head -1)
fi
for i in 1 2; do
    [ -n "$old" ] && check "old-entity-bias-$i" 240 env PYTHONPATH="$old:${PYTHONPATH:-}" \
        python -m mikiwame.framework.cli analyze "$old_run" entity-bias
    check "entity-bias-$i" 240 python -m mikiwame.framework.cli analyze "$run" entity-bias
done
check shortcuts 300 python -m mikiwame.framework.cli analyze "$run" shortcuts
check attribution-benchmark 400 python benchmarks/attribution.py --shape base --run "$run" --threads "$(nproc)" --fp32-texts 48
check predict-jsonl 120 python -m mikiwame.framework.cli predict "$run" "外務省が新たな方針を発表" --format jsonl
check fast-suite 300 python -m pytest -v -m "not slow" -n "$(nproc)" -p no:cacheprovider --tb=short
