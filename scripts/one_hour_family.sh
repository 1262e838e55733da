#!/usr/bin/env bash
# The one-hour family from scratch (docs/neural.md, "Why the from-scratch members missed ..."):
# four members shipped, each trained on dz/dx 1 and 4 data with --far-loss:
#   r16: one layer, a 16-cell exact part and a 1 x 1 U0 (98 learned multiply-adds per cell), for
#        every one-layer cell (dz/dx 0.25 to 4);
#   c2, c3, c4: two, three and four layers, 40-cell exact parts;
# and c1, one layer with a 40-cell exact part: not shipped, the start of c2, c3, c4.
# Two cores, one torch thread per process.
#   scripts/one_hour_family.sh OUTDIR        (the venv's python and nmag on PATH)
# Stage 1: c1 on one core; the layered data, then r16, on the other. Stage 2: c4 on one core;
# c2, then c3, on the other. 2026-12-04 on 2 cores / 23 GiB (with r10, a 10-cell one-layer member,
# where r16 is now): 53.3 minutes, 18.4 GB resident at the peak (c3 and c4 side by side;
# benchmarks/results/one_hour_family/times_s23.log). With less than about 20 GB, set
# ONE_AT_A_TIME=1: c4 then trains after the others (about 20 minutes more).
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
if [ "${ONE_AT_A_TIME:-0}" = 1 ]; then
  train_layered 2 9 922; train_layered 3 9 933; train_layered 4 18 934
else
  ( train_layered 2 9 922; train_layered 3 9 933 ) &
  train_layered 4 18 934
  wait
fi
log all_done
# measure: python benchmarks/member_held_out.py r16/best.pt c2/best.pt c3/best.pt c4/best.pt
