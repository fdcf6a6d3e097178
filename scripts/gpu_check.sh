#!/usr/bin/env bash
# cada's GPU checks in one command, for a machine with an NVIDIA GPU; writes one Markdown report.
# GPU time is scarce: the whole check is sized to finish in under 8 minutes on one H100 / H200.
#
#   bash scripts/gpu_check.sh [OUT_DIR]          # default OUT_DIR: gpu-check
#
# Steps (GPU_CHECK_STEPS, comma-separated; default tests,parity,bench):
#   build   scripts/setup.sh (Release, CUDA kernels when nvcc and a CUDA libtorch are there), run
#           only when $BUILD_DIR/bin/cada is missing
#   tests   the gpu-labelled GoogleTest binaries: CUDA kernels against their CPU references,
#           device samplers' distributions, graph-captured decoding against eager decoding
#   parity  transformers against cada on CUDA in float32: per-token log-probs (cada logprobs) and
#           greedy generation (both schedulers), on checkpoints the tests create
#   bench   tools/bench_generate.py on the GPU: transformers' generate against cada generate,
#           bfloat16, Qwen2.5-1.5B and Llama-3-8B shapes with random weights, with the weight-read
#           limit of each decoding step; the table lands in OUT_DIR/generate_gpu.md
#   serve   (not by default) tools/bench_serve.py on the GPU: `cada serve` under 1, 32 and 128 concurrent
#           clients against `cada generate` on the same prompts (bfloat16, the small preset with the
#           tiny tokenizer); the table lands in OUT_DIR/serve_gpu.md
#   grpo    (not by default) three GRPO steps on a Qwen2.5-1.5B shape with the tiny tokenizer
#           (8 prompts x 8 completions of up to 256 tokens): seconds per step, the generation's
#           share of it, peak GPU memory
#   memory  (not by default) the targets of docs/benchmarks/memory_gpu.md, on random bf16 weights
#           with the tiny tokenizer and the real vocabularies (padded embedding rows):
#           GRPO with LoRA r = 64 on every linear layer of a Llama-3-8B shape, 8 prompts x 8
#           completions of up to 1024 tokens, checkpointed, 2 steps; full fine-tuning (SFT) of a
#           Qwen2.5-1.5B shape on 4 x 2048-token micro-batches, checkpointed, 3 steps. Each: the
#           plan, the caching allocator's peak (allocated and reserved), nvidia-smi's peak and the
#           MFU; the table lands in OUT_DIR/memory_gpu.md
#
# Environment:
#   BUILD_DIR          where bin/cada and the test binaries are (default: build)
#   CADA_PYTHON        Python with torch and transformers (default: the setup venv, else python3)
#   GPU_BENCH_SIZES    default qwen1.5b,llama8b;  GPU_BENCH_BATCHES  default 1,32,128,256
#   GPU_HBM_GBPS       memory bandwidth for the limit (default 4800, an H200; H100 SXM: 3350)
#   GPU_CHECK_WORK     scratch folder for the checkpoints the checks create (default OUT_DIR/work)
#   GPU_BENCH_TIMEOUT, GPU_PARITY_TIMEOUT, GPU_SERVE_TIMEOUT, GPU_GRPO_TIMEOUT, GPU_MEMORY_TIMEOUT
#                      seconds per step (420, 150, 240, 240, 480)
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
OUT=${1:-gpu-check}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
BUILD_DIR=${BUILD_DIR:-build}
STEPS=${GPU_CHECK_STEPS:-tests,parity,bench}
VENV=${CADA_VENV:-$HOME/.cache/cada/venv}
PY=${CADA_PYTHON:-$([ -x "$VENV/bin/python" ] && echo "$VENV/bin/python" || echo python3)}
REPORT="$OUT/gpu_check.md"
WORK=${GPU_CHECK_WORK:-$OUT/work}   # checkpoints the checks create
T0=$(date +%s)
log() { printf '[gpu-check %4ds] %s\n' "$(($(date +%s) - T0))" "$*" >&2; }
has_step() { [[ ",$STEPS," == *",$1,"* ]]; }

if ! { command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; } && [ -z "${GPU_CHECK_ALLOW_NO_GPU:-}" ]; then
  log "no NVIDIA GPU here (nvidia-smi -L fails): the gpu tests would only skip; GPU_CHECK_ALLOW_NO_GPU=1 runs anyway"
  exit 1
fi
if [ ! -x "$BUILD_DIR/bin/cada" ] || has_step build; then
  log "building (scripts/setup.sh --with-tests)"
  bash scripts/setup.sh --with-tests || { log "build failed"; exit 1; }
fi
CADA=$(cd "$BUILD_DIR/bin" && pwd)/cada
# A binary built against another copy of libtorch: use the one beside this Python (and the CUDA
# runtime libraries of its nvidia-* packages).
if ldd "$CADA" | grep -q "not found"; then
  LIBS=$("$PY" -c 'import os, glob, torch
d = [os.path.join(os.path.dirname(torch.__file__), "lib")]
try:
    import nvidia
    for p in nvidia.__path__:
        d += sorted(os.path.dirname(f) for f in glob.glob(os.path.join(p, "*", "lib", "libcudart.so*")))
except ImportError:
    pass
print(":".join(dict.fromkeys(d)))')
  export LD_LIBRARY_PATH="$LIBS:${LD_LIBRARY_PATH:-}"
  if ldd "$CADA" | grep "not found"; then log "cada cannot find the libraries above"; exit 1; fi
fi
export PYTHONUNBUFFERED=1

{
  echo "# cada GPU check"
  echo
  echo "- date: $(date -u +%Y-%m-%dT%H:%MZ); commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "- GPU: $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | head -1)"
  echo "- torch $("$PY" -c 'import torch; print(torch.__version__)'), transformers $("$PY" -c 'import transformers; print(transformers.__version__)')"
  echo
} >"$REPORT"
status=0
section() {  # section TITLE LOGFILE RC
  local rc=$3
  [ "$rc" -ne 0 ] && status=1
  { echo "## $1: $([ "$rc" -eq 0 ] && echo passed || echo "FAILED (exit $rc)")"; echo; echo '```';
    tail -n "${4:-25}" "$2"; echo '```'; echo; } >>"$REPORT"
}

if has_step tests; then
  log "gpu tests"
  rc=0
  : >"$OUT/tests.log"
  for t in $(find "$BUILD_DIR" -maxdepth 3 -name 'cada_*_gpu_tests' -type f -perm -u+x | sort); do
    timeout 240 "$t" --gtest_brief=1 >>"$OUT/tests.log" 2>&1
    trc=$?
    [ $trc -ne 0 ] && rc=1
    echo "$(basename "$t"): exit $trc" >>"$OUT/tests.log"
  done
  grep -E "PASSED|FAILED|SKIPPED|exit" "$OUT/tests.log" >&2
  section "gpu-labelled tests" "$OUT/tests.log" $rc 40
fi

if has_step bench; then
  log "generation benchmark"
  timeout "${GPU_BENCH_TIMEOUT:-420}" "$PY" tools/bench_generate.py --cada "$CADA" --device cuda --dtype bfloat16 \
    --sizes "${GPU_BENCH_SIZES:-qwen1.5b,llama8b}" --batches "${GPU_BENCH_BATCHES:-1,32,128,256}" \
    --prompt-len 128 --new-tokens 128 --repeats 1 --hbm-gbps "${GPU_HBM_GBPS:-4800}" \
    --jsonl "$OUT/generate_gpu.jsonl" --out "$OUT/generate_gpu.md" >"$OUT/bench.log" 2>&1
  rc=$?
  section "generation benchmark" "$OUT/bench.log" $rc 30
fi

if has_step serve; then
  log "serving benchmark"
  timeout "${GPU_SERVE_TIMEOUT:-240}" "$PY" tools/bench_serve.py --cada "$CADA" --device cuda --dtype bfloat16 \
    --preset small --concurrency 1,32,128 --requests 128 --new-tokens 128 --batch-rows 128 \
    --out "$OUT/serve_gpu.md" >"$OUT/serve.log" 2>&1
  rc=$?
  section "serving benchmark" "$OUT/serve.log" $rc 12
fi

if has_step parity; then
  log "parity with transformers on CUDA (float32)"
  rc=0
  : >"$OUT/parity.log"
  for t in test_model_logprobs test_generate_greedy; do
    CADA_PARITY_DEVICE=cuda timeout "${GPU_PARITY_TIMEOUT:-150}" "$PY" tests/parity/$t.py --cada "$CADA" --workdir "$WORK/$t" \
      >>"$OUT/parity.log" 2>&1 || rc=1
  done
  tail -6 "$OUT/parity.log" >&2
  section "parity with transformers on CUDA" "$OUT/parity.log" $rc
fi

if has_step grpo; then
  log "GRPO steps on a Qwen2.5-1.5B shape"
  W="$WORK/grpo"
  rm -rf "$W" && mkdir -p "$W"
  cat >"$W/config.json" <<'JSON'
{"model_type": "qwen2", "architectures": ["Qwen2ForCausalLM"], "hidden_size": 1536, "intermediate_size": 8960,
 "num_hidden_layers": 28, "num_attention_heads": 12, "num_key_value_heads": 2, "tie_word_embeddings": true,
 "hidden_act": "silu", "rms_norm_eps": 1e-6, "rope_theta": 1000000.0, "max_position_embeddings": 4096}
JSON
  {
    "$CADA" init-model --preset tiny --train-tokenizer data/tiny-world/corpus.jsonl --out "$W/tok" &&
    "$CADA" init-model --config "$W/config.json" --tokenizer "$W/tok" --out "$W/model" --dtype bfloat16 &&
    (nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 500 >"$W/mem.txt" & echo $! >"$W/mem.pid"
     timeout "${GPU_GRPO_TIMEOUT:-240}" "$CADA" train --config configs/tiny/grpo.json model="$W/model" output_dir="$W/run" train.device=cuda \
       train.bf16_autocast=true train.steps=3 train.prompts_per_step=8 train.micro_batch_size=16 \
       rollout.num_generations=8 rollout.max_completion_length=256 checkpoint.every=1000 log.tensorboard=false
     rc=$?; kill "$(cat "$W/mem.pid")"; exit $rc)
  } >"$OUT/grpo.log" 2>&1
  rc=$?
  if [ -f "$W/run/metrics.jsonl" ]; then
    "$PY" - "$W/run/metrics.jsonl" "$W/mem.txt" >>"$OUT/grpo.log" <<'PYEOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
last = rows[-1]
peak = max((int(x) for x in open(sys.argv[2]).read().split() if x.isdigit()), default=0)
step, gen = last.get("time/step_s", 0), last.get("time/generate_s", 0)
print(f"GRPO step {last.get('step')}: {step:.2f} s per step, generation {gen:.2f} s ({gen / step:.0%} of the step), "
      f"MFU {last.get('perf/mfu', 0):.1%}, peak GPU memory {peak} MiB")
PYEOF
  fi
  section "GRPO on a Qwen2.5-1.5B shape" "$OUT/grpo.log" $rc 8
fi

if has_step memory; then
  log "memory targets: 8B LoRA GRPO, 1.5B full fine-tuning"
  W="$WORK/memory"
  rm -rf "$W" && mkdir -p "$W"
  "$PY" - "$W" <<'PYEOF'
import json, sys
w = sys.argv[1]
common = {"hidden_act": "silu", "max_position_embeddings": 4096}
json.dump(dict(common, model_type="llama", architectures=["LlamaForCausalLM"], vocab_size=128256, hidden_size=4096,
               intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8,
               rms_norm_eps=1e-5, rope_theta=500000.0, tie_word_embeddings=False), open(f"{w}/llama8b.json", "w"))
json.dump(dict(common, model_type="qwen2", architectures=["Qwen2ForCausalLM"], vocab_size=151936, hidden_size=1536,
               intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12, num_key_value_heads=2,
               rms_norm_eps=1e-6, rope_theta=1000000.0, tie_word_embeddings=True), open(f"{w}/qwen1.5b.json", "w"))
text = " ".join(json.loads(l)["text"] for l in open("data/tiny-world/corpus.jsonl"))
with open(f"{w}/sft.jsonl", "w") as f:   # rows longer than 2048 tokens, cut to max_length
    for i in range(16):
        f.write(json.dumps({"text": text[i * 97:][:20000]}) + "\n")
json.dump({"model": f"{w}/qwen1.5b", "data": f"{w}/sft.jsonl", "output_dir": f"{w}/sft", "eval_split_field": "",
           "max_length": 2048, "steps": 3, "batch_size": 8, "micro_batch_size": 4, "eval_every": 0,
           "device": "cuda", "bf16_autocast": True, "gradient_checkpointing": True, "tensorboard": False,
           "checkpoint": {"every": 1000, "keep_last": 1}}, open(f"{w}/sft.json", "w"))
PYEOF
  watch_mem() { nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 500 >"$1" & echo $!; }
  {
    "$CADA" init-model --preset tiny --train-tokenizer data/tiny-world/corpus.jsonl --out "$W/tok" &&
    "$CADA" init-model --config "$W/llama8b.json" --tokenizer "$W/tok" --out "$W/llama8b" --dtype bfloat16 &&
    "$CADA" init-model --config "$W/qwen1.5b.json" --tokenizer "$W/tok" --out "$W/qwen1.5b" --dtype bfloat16 &&
    (pid=$(watch_mem "$W/grpo_mem.txt")
     timeout "${GPU_MEMORY_TIMEOUT:-480}" "$CADA" train --config configs/tiny/grpo.json model="$W/llama8b" \
       output_dir="$W/grpo" train.device=cuda train.bf16_autocast=true lora.r=64 lora.alpha=128 \
       gradient_checkpointing=true train.steps=2 train.prompts_per_step=8 train.micro_batch_size=4 \
       rollout.num_generations=8 rollout.max_prompt_length=512 rollout.max_completion_length=1024 \
       rollout.batch_rows=64 checkpoint.every=1000 log.tensorboard=false
     rc=$?; kill "$pid"; exit $rc) &&
    (pid=$(watch_mem "$W/sft_mem.txt")
     timeout "${GPU_MEMORY_TIMEOUT:-480}" "$CADA" sft --config "$W/sft.json"
     rc=$?; kill "$pid"; exit $rc)
  } >"$OUT/memory.log" 2>&1
  rc=$?
  "$PY" - "$W" "$OUT/memory_gpu.md" >>"$OUT/memory.log" 2>&1 <<'PYEOF'
import json, os, sys
w, out = sys.argv[1], sys.argv[2]
rows = []
for name, run, target_gb in (("Llama-3-8B shape, GRPO, LoRA r=64 all-linear, G=8 x 8 prompts, 1024 tokens", "grpo", 60),
                             ("Qwen2.5-1.5B shape, SFT, full fine-tuning, 4 x 2048 tokens", "sft", 30)):
    path = f"{w}/{run}/metrics.jsonl"
    if not os.path.exists(path):
        rows.append(f"| {name} | - | - | - | - | - | did not run |")
        continue
    last = [json.loads(l) for l in open(path) if l.strip()][-1]
    smi = max((int(x) for x in open(f"{w}/{run}_mem.txt").read().split() if x.isdigit()), default=0) / 1024
    peak_gb = last["memory/peak_reserved_gib"] * 1.073741824
    mfu = last.get("perf/mfu", 0)
    rows.append(f"| {name} | {last['memory/plan_gib']:.1f} | {last['memory/peak_allocated_gib']:.1f} | "
                f"{last['memory/peak_reserved_gib']:.1f} | {smi:.1f} | {mfu:.1%} | "
                f"{'met' if peak_gb <= target_gb else 'missed'} ({peak_gb:.1f} of {target_gb} GB) |")
table = ["| run | plan GiB | peak allocated GiB | peak reserved GiB | nvidia-smi peak GiB | MFU | target |",
         "|---|---|---|---|---|---|---|"] + rows
open(out, "w").write("\n".join(table) + "\n")
print("\n".join(table))
PYEOF
  section "memory targets" "$OUT/memory.log" $rc 12
fi

log "done in $(($(date +%s) - T0)) s: $REPORT"
echo "- total: $(($(date +%s) - T0)) s" >>"$REPORT"
exit $status
