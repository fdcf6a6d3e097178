#!/usr/bin/env bash
# Fetch the public data sets the GPU configs read (configs/gpu) into data/external/.
#
#   bash scripts/download_data.sh                  # fetch what is missing, verify everything
#   bash scripts/download_data.sh --list           # the files, their sources and destinations
#   CADA_DATA_MIRROR=file:///srv/mirror bash scripts/download_data.sh   # fetch <mirror>/<dest> instead
#   HF_TOKEN=hf_... bash scripts/download_data.sh  # also the gated sets (WildJailbreak: accept its terms first)
#
# Afterwards, with a built cada (CADA=build/bin/cada by default), the labelled training prompts
# the chains and GRPO configs read are written by
#   cada prompts --config configs/gpu/cada/prompts_train.json   (-> data/external/prompts/train.jsonl)
# (the script runs it when the binary exists, and prints the command otherwise).
#
# Idempotent: a file already present is not fetched again, only verified. Checksums live in
# data/external/SHA256SUMS ("<sha256>  <dest>", sha256sum's format). The project ships no
# checksums it could not compute itself: a file with no line there is recorded on its first
# download (trust on first use) and verified on every later run; a mismatch stops the script
# with the file named. Delete the file and its line to fetch it again.
# Sources are the data sets' official locations: Hugging Face at a pinned revision, GitHub raw
# files at branch main (the checksum record catches a later change).
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=data/external
SUMS=$DEST/SHA256SUMS
MIRROR=${CADA_DATA_MIRROR:-}

# dest (under data/external) | official URL [| gated: needs HF_TOKEN, skipped without it]
FILES=(
  "PKU-SafeRLHF/train.jsonl|https://huggingface.co/datasets/PKU-Alignment/PKU-SafeRLHF/resolve/74baebd4502573cdf0bdb1c4bb7d359f40cdf77b/data/Alpaca-7B/train.jsonl"
  "PKU-SafeRLHF/test.jsonl|https://huggingface.co/datasets/PKU-Alignment/PKU-SafeRLHF/resolve/74baebd4502573cdf0bdb1c4bb7d359f40cdf77b/data/Alpaca-7B/test.jsonl"
  "xstest_prompts.csv|https://raw.githubusercontent.com/paul-rottger/exaggerated-safety/main/xstest_prompts.csv"
  "strongreject_small_dataset.csv|https://raw.githubusercontent.com/alexandrasouly/strongreject/main/strongreject_dataset/strongreject_small_dataset.csv"
  "harmful_behaviors.csv|https://raw.githubusercontent.com/llm-attacks/llm-attacks/main/data/advbench/harmful_behaviors.csv"
  "harmbench_behaviors_text_test.csv|https://raw.githubusercontent.com/centerforaisafety/HarmBench/main/data/behavior_datasets/harmbench_behaviors_text_test.csv"
  "jailbreak_prompts_2023_12_25.csv|https://raw.githubusercontent.com/verazuo/jailbreak_llms/main/data/prompts/jailbreak_prompts_2023_12_25.csv"
  "alpaca_data.json|https://raw.githubusercontent.com/tatsu-lab/stanford_alpaca/main/alpaca_data.json"
  "databricks-dolly-15k.jsonl|https://huggingface.co/datasets/databricks/databricks-dolly-15k/resolve/main/databricks-dolly-15k.jsonl"
  "gsm8k_test.jsonl|https://raw.githubusercontent.com/openai/grade-school-math/master/grade_school_math/data/test.jsonl"
  "mmlu/data.tar|https://people.eecs.berkeley.edu/~hendrycks/data.tar"
  "wildjailbreak/eval.tsv|https://huggingface.co/datasets/allenai/wildjailbreak/resolve/main/eval/eval.tsv|gated"
)

case "${1:-}" in
  -h|--help) sed -n '2,14p' "$0"; exit 0;;
  --list) for f in "${FILES[@]}"; do r=${f#*|}; printf '%-48s %s\n' "$DEST/${f%%|*}" "${r%%|*}"; done; exit 0;;
  "") ;;
  *) echo "download_data.sh: unknown option '$1' (see --help)" >&2; exit 2;;
esac
command -v curl >/dev/null || { echo "download_data.sh: curl is needed to fetch the data" >&2; exit 1; }
mkdir -p "$DEST"; touch "$SUMS"

for f in "${FILES[@]}"; do
  name=${f%%|*}; rest=${f#*|}; url=${rest%%|*}; gated=; [ "$rest" != "$url" ] && gated=${rest#*|}
  out=$DEST/$name
  [ -n "$MIRROR" ] && url=$MIRROR/$name
  auth=()
  if [ -n "$gated" ] && [ -z "$MIRROR" ]; then
    if [ -z "${HF_TOKEN:-}" ] && [ ! -s "$out" ]; then echo "skip   $out  (gated on Hugging Face: set HF_TOKEN)"; continue; fi
    auth=(-H "Authorization: Bearer ${HF_TOKEN:-}")
  fi
  if [ ! -s "$out" ]; then
    echo "fetch  $out  <- $url"
    mkdir -p "$(dirname "$out")"
    if ! curl -fsSL --retry 2 "${auth[@]}" -o "$out.part" "$url"; then
      rm -f "$out.part"; echo "download_data.sh: could not fetch $url (for $out)" >&2; exit 1
    fi
    mv "$out.part" "$out"
  fi
  sum=$(sha256sum "$out" | cut -d' ' -f1)
  want=$(awk -v n="$name" '$2 == n {print $1}' "$SUMS")
  if [ -z "$want" ]; then
    echo "$sum  $name" >> "$SUMS"; echo "record $out  sha256 $sum (first download)"
  elif [ "$want" != "$sum" ]; then
    echo "download_data.sh: $out has sha256 $sum, but $SUMS expects $want; delete the file (and its line to accept a new version)" >&2
    exit 1
  else
    echo "ok     $out"
  fi
done

# MMLU's test CSVs live in the archive: data/test/<subject>_test.csv.
if [ -s "$DEST/mmlu/data.tar" ] && [ ! -d "$DEST/mmlu/data/test" ]; then
  tar -xf "$DEST/mmlu/data.tar" -C "$DEST/mmlu" data/test && echo "unpack $DEST/mmlu/data/test"
fi

CADA=${CADA:-build/bin/cada}
if [ -x "$CADA" ]; then
  "$CADA" prompts --config configs/gpu/cada/prompts_train.json
else
  echo "next: cada prompts --config configs/gpu/cada/prompts_train.json  (writes data/external/prompts/train.jsonl)"
fi
