#!/usr/bin/env bash
# Retrains the shipped shapes model from nothing and compares the result with the committed files by sha256.
#   bash train/reproduce.sh [RUNS_DIR]      (default train/runs/reproduce; about 1 h 17 min on 2 cores)
# The three runs of docs/training.md "Reproducing the weights", with their thread counts: PyTorch's CPU kernels split
# their sums by thread, so another thread count gives other bits.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-train/runs/reproduce}
MODEL=models/uvit-t2v-shapes
NET="--patch-size 4 --temporal-patch-size 16 --embed-dim 256 --num-heads 4 --prediction x0 --weighting v-capped \
  --latent-std 2.0 --batch 16 --bf16"
start=$SECONDS
stamp() { echo "[$(( (SECONDS - start) / 60 )) min] $*"; }

stamp "design 5: 18 000 steps, 2 threads (log: $RUNS/p4/log.jsonl)"
python3 train/train.py --out "$RUNS/p4" --steps 18000 --anneal --threads 2 --lr 5e-4 $NET --ckpt-every 2000
# the fine-tune starts from design 5's float16 export, as the shipped one did
python3 train/export.py "$RUNS/p4/ckpt-18000.pt" --half --out "$RUNS/design5"

stamp "shape-mask fine-tune (6 000 steps) and shape decoder (2 000 steps), one thread each, side by side"
python3 train/train.py --out "$RUNS/sm" --init "$RUNS/design5" --shape-masks --steps 6000 --anneal --lr 3e-4 \
  --seed 6 --threads 1 $NET --ckpt-every 1000 &
fine=$!
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT  # one run failing stops the other
python3 train/decoder.py --out "$RUNS/dec" --steps 2000 --threads 1 &
dec=$!
wait $fine
wait $dec

python3 train/export.py "$RUNS/sm/ckpt-6000.pt" --half --out "$RUNS/model"
python3 train/decoder.py --export "$RUNS/dec/decoder-2000.pt" --model-dir "$RUNS/model"
stamp "done; sha256, retrained against committed:"
same=1
for f in weights.safetensors text_encoder.safetensors decoder.safetensors; do
  got=$(sha256sum "$RUNS/model/$f" | cut -d' ' -f1)
  want=$(sha256sum "$MODEL/$f" | cut -d' ' -f1)
  if [ "$got" = "$want" ]; then echo "  $f  $got  identical"; else echo "  $f  $got  DIFFERS from $want"; same=0; fi
done
[ $same = 1 ]
