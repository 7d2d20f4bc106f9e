#!/usr/bin/env bash
# The trust tables of docs/byzantine.md and docs/trust.md, from scratch:
# every attack at N = 16 and N = 64 peers with 5, 10, 20 and 30 % attackers,
# plus a clean run per fraction for the "vs clean" column.
#   update attacks (statistical detection + robust mixing): 2 x 24 runs
#   compute cheats (step transcripts, verify.rate = 0.005):  2 x 20 runs
# About 1.5 hours on one core. Usage: scripts/byzantine_table.sh [OUT_DIR]
set -euo pipefail
out=${1:-runs/byzantine}
fractions=0.05,0.1,0.2,0.3
for n in 16 64; do
  build/murmur sweep configs/byzantine-$n.toml \
    --param attack.kind=none,gaussian,zero_gradient,mean_shift,sign_flip,label_flip \
    --param attack.fraction=$fractions --out "$out/updates-$n"
  build/murmur sweep configs/byzantine-$n.toml --set verify.rate=0.005 \
    --param attack.kind=none,skip_product,perturb,half_batch,replay \
    --param attack.fraction=$fractions --out "$out/cheats-$n"
done
for t in updates-16 updates-64 cheats-16 cheats-64; do
  echo
  echo "## $t"
  cat "$out/$t/sweep.md"
done
