#!/usr/bin/env bash
# The one-hour family from scratch (docs/neural.md, "Why the from-scratch members missed ..."):
# five members shipped, trained with --far-loss:
#   r16: one layer, a 16-cell exact part and a 1 x 1 U0 (98 learned multiply-adds per cell), for
#        every one-layer cell (dz/dx 0.25 to 4), on dz/dx 1 and 4 data;
#   c2, c3, c4: two, three and four layers, 40-cell exact parts, on dz/dx 1 and 4 data;
#   c4t: four layers of tall cells (dz/dx 3.2 to 4), a 56-cell exact part, fine-tuned from c4 on
#        dz/dx 3.2 and 4 data (a film 16 cells of dx thick needs a wider exact part than 40 cells);
# and c1, one layer with a 40-cell exact part: not shipped, the start of c2, c3, c4.
# Two cores, one torch thread per process.
#   scripts/one_hour_family.sh OUTDIR        (the venv's python and nmag on PATH)
# Stage 1: c1 on one core; the layered data, then r16, on the other. Stage 2: c4 then c4t on one
# core; the tall four-layer data, c2, then c3, on the other. Measured runs are logged in
# benchmarks/results/one_hour_family/times_s*.log (2026-12-05, five members: 58.3 minutes, about
# 19 GB in use at the peak, c3 and c4t side by side). With less than about 20 GB, set ONE_AT_A_TIME=1:
# the layered members then train one after another (about 20 minutes more).
# The members ship as resources/neural/lean_nz*_R*.pt (docs/neural.md, "Reproduce").
set -eu
OUT=${1:?usage: scripts/one_hour_family.sh OUTDIR}
mkdir -p "$OUT" && cd "$OUT"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
T="--epochs 300 --batch-cells 65536 --warmup 20 --threads 1 --val-fraction 0.05 --no-progress"
S="64x64,128x128,256x256,96x192,40x160,512x512"
D="python -m engine.neural.data --llg-fraction 0 --workers 1"
ONE="$S,1024x1024 --counts 1600,800,192,160,192,96,16"
BIG="$S,1024x1024 --counts 800,400,128,96,128,48,8"
MID="$S --counts 800,400,128,96,128,64"
log() { echo "$(date +%H:%M:%S) $*" >> times.log; }
log start
$D --out g1.h5 --seed 905 --aspect 1.0 --nz 1 --shapes $ONE > g1.log 2>&1 &
$D --out f1.h5 --seed 915 --aspect 4.0 --nz 1 --shapes $ONE > f1.log 2>&1
wait; log data1_done
# stage 1: the one-layer member from random weights on core 1, the layered data on core 2
nmag train --data g1.h5 --also-data f1.h5 --out c1 --far-loss --lr 2e-3 --max-minutes 30 --seed 921 --stem 4 \
    --u0-kernel 3 --local-radius 40 --near-full 20 $T > c1.log 2>&1 &
C1=$!
( $D --out g2.h5 --seed 906 --aspect 1.0 --nz 2 --shapes $BIG
  $D --out f2.h5 --seed 916 --aspect 4.0 --nz 2 --shapes $BIG
  $D --out g4.h5 --seed 908 --aspect 1.0 --nz 4 --shapes $MID
  $D --out f4.h5 --seed 918 --aspect 4.0 --nz 4 --shapes $MID
  $D --out g3.h5 --seed 907 --aspect 1.0 --nz 3 --shapes $MID
  $D --out f3.h5 --seed 917 --aspect 4.0 --nz 3 --shapes $MID ) > data2.log 2>&1
log data2_done
# the one-layer member, from random weights, until about when c1 ends
nmag train --data g1.h5 --also-data f1.h5 --out r16 --far-loss --lr 2e-3 --max-minutes 21 --seed 951 --stem 4 \
    --u0-kernel 1 --local-radius 16 --near-full 8 $T > r16.log 2>&1
log r16_done
wait $C1; log c1_done
# stage 2: the layered members start from the one-layer one (its far field laid out for the layers)
train_layered() {   # nz minutes seed
  nmag train --data g$1.h5 --also-data f$1.h5 --out c$1 --far-loss --lr 3e-4 --max-minutes $2 --seed $3 \
      --init c1/best.pt $T > c$1.log 2>&1; log c$1_done; }
rm -f t4.done   # a file from an earlier run in this folder must not start c4t early
tall_data() { $D --out t4.h5 --seed 928 --aspect 3.2 --nz 4 --shapes $MID > t4.log 2>&1; touch t4.done; log t4_done; }
train_tall() {   # from c4, once the tall data exist
  while [ ! -e t4.done ]; do sleep 5; done
  nmag train --data f4.h5 --also-data t4.h5 --out c4t --far-loss --lr 6e-4 --max-minutes 9 --seed 945 \
      --init c4/best.pt --local-radius 56 --near-full 28 $T > c4t.log 2>&1; log c4t_done; }
if [ "${ONE_AT_A_TIME:-0}" = 1 ]; then
  tall_data; train_layered 2 9 922; train_layered 3 9 933; train_layered 4 11 934; train_tall
else
  ( tall_data; train_layered 2 9 922; train_layered 3 9 933 ) &
  train_layered 4 11 934; train_tall
  wait
fi
log all_done
# measure: python benchmarks/member_held_out.py r16/best.pt c2/best.pt c3/best.pt c4/best.pt c4t/best.pt
