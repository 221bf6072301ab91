#!/usr/bin/env bash
# Measure per-node energy of the six IrEne models on an NVIDIA GPU, train irene-<gpu> profiles
# on the data, and evaluate them (issue 6). One command on the GPU machine, no network:
#
#   OUT=/some/folder bash benchmarks/gpu_calibrate.sh             # the real run (NVML, CUDA)
#   OUT=/tmp/x bash benchmarks/gpu_calibrate.sh --dry-run         # CPU rehearsal, fake meter
#
# Environment knobs (defaults in brackets):
#   OUT                 output folder [benchmarks/results/gpu_calibrate]
#   CAL_BUDGET_S        seconds after which no new configuration starts [330 real, 120 dry-run]
#   CAL_MODELS          comma-separated zoo specs [the six HF models of the IrEne dataset]
#   CAL_BATCH_SIZES     [8,32]          CAL_SEQ_LENS  [64,128,256]
#   CAL_MIN_WINDOW_S    shortest measuring window, s [0.15]
#   CAL_MAX_WINDOWS     windows per node at most [4]
#
# The grid runs configuration-major, corners first ((8,64), (32,256), (8,256), (32,64), then
# the rest: every model at one configuration before the next), and the dataset is rewritten
# after every configuration, so a run cut short by the budget or by the machine's time limit
# still leaves data for every model across the grid. Sizing: the six models have 101 unique
# nodes per configuration (22 BERT, 15 DistilBERT, 22 RoBERTa, 14 each GPT-2 family), each
# ~0.65 s on a GPU (a 1-call ramp window, then 3-4 windows of >= 0.15 s): ~66 s per grid point,
# so the 330 s budget gives about 5 of the 6 grid points (~5.5 min of measuring). Run it with
# a 540 s limit: with the machine's start-up that leaves room for one rerun of a short failure.
#
# Writes under $OUT: data/ (IrEne CSV layout + hardware.json, measurements.jsonl, summary.json),
# profiles/irene-<gpu>.irene.joblib and irene-<gpu>-full.irene.joblib, evaluate_static.json,
# evaluate_full.json, meters.json, nvidia-smi.txt, calibrate.log, REPORT.md, and timings.txt.
set -euo pipefail

DRY_RUN=0
for arg in "$@"; do
    case "$arg" in
        --dry-run) DRY_RUN=1 ;;
        -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
        *) echo "gpu_calibrate.sh: unknown argument '$arg' (use --dry-run or --help)" >&2; exit 2 ;;
    esac
done

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$HERE"
OUT="${OUT:-benchmarks/results/gpu_calibrate}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
started=$(date +%s)
stamp() { echo "$(( $(date +%s) - started )) s  $*" | tee -a "$OUT/timings.txt"; }
: > "$OUT/timings.txt"

if [[ $DRY_RUN == 1 ]]; then
    METER=fake
    DEVICE=cpu
    MODELS="${CAL_MODELS:-examples.tiny_models:tiny_bert,examples.tiny_models:tiny_gpt2}"
    BATCH_SIZES="${CAL_BATCH_SIZES:-1,2}"
    SEQ_LENS="${CAL_SEQ_LENS:-8,16}"
    BUDGET="${CAL_BUDGET_S:-120}"
    EXTRA=(--min-windows 1 --max-windows 2 --warmup 0 --idle-s 1)
else
    METER=nvml
    DEVICE=cuda
    MODELS="${CAL_MODELS:-bert-base-uncased,distilbert-base-uncased,roberta-base,distilgpt2,openai-gpt,gpt2}"
    BATCH_SIZES="${CAL_BATCH_SIZES:-8,32}"
    SEQ_LENS="${CAL_SEQ_LENS:-64,128,256}"
    BUDGET="${CAL_BUDGET_S:-330}"
    EXTRA=(--min-window-s "${CAL_MIN_WINDOW_S:-0.15}" --max-windows "${CAL_MAX_WINDOWS:-4}"
           --min-windows 3 --warmup 3 --idle-s 3)
    # the machine has torch, transformers, sklearn, joblib, pyyaml, rich, nvidia-ml-py and no
    # network: install without dependencies or index (the build backend must be there already)
    if python -m pip install --no-deps --no-index --no-build-isolation -q -e . \
        || python -m pip install --no-deps --no-index -q -e .; then
        stamp "installed"
    else
        stamp "pip could not install offline (no hatchling?): running from the source tree"
    fi
    if command -v nvidia-smi > /dev/null; then
        nvidia-smi -q > "$OUT/nvidia-smi.txt" 2>&1 || true
        nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,clocks.max.sm,power.draw,power.limit \
            --format=csv > "$OUT/nvidia-smi.csv" 2>&1 || true
    fi
fi

if ! command -v irene > /dev/null || ! irene --version > /dev/null 2>&1; then
    export PYTHONPATH="$HERE${PYTHONPATH:+:$PYTHONPATH}"
    irene() { python -m predictor.cli.main "$@"; }
    stamp "irene not on PATH: using python -m predictor.cli.main from $HERE"
fi
python -c "import predictor, torch, transformers, sklearn; print('predictor', predictor.__version__, 'torch', torch.__version__, 'cuda', torch.cuda.is_available())" \
    | tee -a "$OUT/timings.txt"

irene meters --format json > "$OUT/meters.json"
irene meters --require "$METER" > /dev/null   # exit 8 with the reason if the meter cannot read
stamp "meter $METER ok"

irene calibrate --meter "$METER" --device "$DEVICE" --models "$MODELS" \
    --batch-sizes "$BATCH_SIZES" --seq-lens "$SEQ_LENS" --time-budget-s "$BUDGET" \
    "${EXTRA[@]}" --quiet -o "$OUT/data" 2>&1 | tee "$OUT/calibrate.log"
stamp "calibrated"

GPU_SLUG="$(python - "$OUT/data/hardware.json" "$DRY_RUN" <<'PY'
import json, re, sys
hw = json.load(open(sys.argv[1]))
if sys.argv[2] == "1":
    print("fake")
else:
    name = (hw.get("gpu_name") or hw.get("device") or "gpu").lower()
    m = re.search(r"\b([a-z]{1,2}\d{2,4}[a-z]?)\b", name.replace("nvidia", ""))
    print(m.group(1) if m else re.sub(r"[^a-z0-9]+", "-", name).strip("-"))
PY
)"
mkdir -p "$OUT/profiles"
DESC="measured with irene calibrate ($METER) on $(python -c "import json,sys; h=json.load(open(sys.argv[1])); print(h.get('gpu_name') or h.get('device'))" "$OUT/data/hardware.json")"
irene train "$OUT/data" -o "$OUT/profiles/irene-$GPU_SLUG.irene.joblib" --features static \
    --name "irene-$GPU_SLUG" --description "$DESC"
irene train "$OUT/data" -o "$OUT/profiles/irene-$GPU_SLUG-full.irene.joblib" --features full \
    --name "irene-$GPU_SLUG-full" --description "$DESC"
stamp "trained"
irene evaluate "$OUT/data" --features static --format json > "$OUT/evaluate_static.json"
irene evaluate "$OUT/data" --features full --format json > "$OUT/evaluate_full.json"
irene evaluate "$OUT/data" --features static | tee "$OUT/evaluate_static.txt"
stamp "evaluated"

python - "$OUT" "$GPU_SLUG" <<'PY'
import json, sys
from pathlib import Path

out, slug = Path(sys.argv[1]), sys.argv[2]
hw = json.loads((out / "data" / "hardware.json").read_text())
summary = json.loads((out / "data" / "summary.json").read_text())
lines = [
    f"# irene-{slug}: per-node energy measured with irene calibrate",
    "",
    f"- device: {hw.get('gpu_name') or hw.get('device')} (driver {hw.get('driver')}), "
    f"meter {hw.get('meter')} / {hw.get('method')}, date {hw.get('date')}",
    f"- idle power: {hw.get('idle_power_w'):.2f} W (subtracted: {hw.get('idle_subtracted')})",
    f"- configurations measured: {summary['configurations']}; skipped: {len(hw.get('skipped', []))}; "
    f"unmeasured nodes: {len(hw.get('gaps', []))}",
    f"- grid: models {', '.join(hw['models'])}; batch sizes {hw['batch_sizes']}; "
    f"sequence lengths {hw['seq_lens']}",
    "",
    "## Spread per node (std/mean of the per-call energy over windows, unique nodes)",
    "",
    "| level | n | median | p90 | max |",
    "|---|---|---|---|---|",
]
for level, s in summary.get("rel_std", {}).items():
    if s:
        lines.append(f"| {level} | {int(s['n'])} | {100*s['median']:.2f} % | {100*s['p90']:.2f} % | {100*s['max']:.2f} % |")
lines += [
    "",
    "## Sum of measured children / measured parent",
    "",
    "| parent level | n | mean | median | min | max |",
    "|---|---|---|---|---|---|",
]
for level, s in summary.get("children_ratio", {}).items():
    if s:
        lines.append(f"| {level} | {int(s['n'])} | {s['mean']:.3f} | {s['median']:.3f} | {s['min']:.3f} | {s['max']:.3f} |")
lines += ["", "## Leave-one-model-out MAPE (static features)", "", "```"]
lines.append((out / "evaluate_static.txt").read_text().rstrip())
lines += ["```", "", "Per-configuration seconds: see data/hardware.json 'config_seconds'."]
(out / "REPORT.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
PY
stamp "done"
