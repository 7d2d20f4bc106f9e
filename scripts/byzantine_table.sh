#!/usr/bin/env bash
# The trust tables of docs/byzantine.md and docs/trust.md, from scratch:
# every attack at N = 16 and N = 64 peers with 5, 10, 20 and 30 % attackers,
# plus a clean run per sweep for the "vs clean" column (a sweep runs a clean
# configuration once and shares it between its fractions).
#   update attacks (statistical detection + robust mixing), per N:
#     none, gaussian, zero_gradient, mean_shift (ALIE's z), sign_flip,
#     label_flip, extreme (every round), ipm, dissensus      1 + 32 runs
#     extreme once (attack.every = 0)                         1 + 4
#     mean_shift acting every 4th step (attack.every = 4)     1 + 4
#     gaussian without own noise (attack.noise = 0)           1 + 4
#     extreme every round at 999, just under gossip.max_value's default
#       bound for these models (1000 x max(1, max|x0|))        1 + 4
#     dissensus from the topology's cut (attack.placement)    1 + 4
#   compute cheats (step transcripts, verify.rate = 0.005):   1 + 16
# N = 16 and N = 64 run as two processes side by side (2 cores).
# Usage: scripts/byzantine_table.sh [OUT_DIR] [updates|cheats|all]
set -euo pipefail
out=${1:-runs/byzantine}
what=${2:-all}
fractions=0.05,0.1,0.2,0.3
table() {
  local n=$1 cfg=configs/byzantine-$1.toml
  if [[ $what != cheats ]]; then
    build/murmur sweep $cfg \
      --param attack.kind=none,gaussian,zero_gradient,mean_shift,sign_flip,label_flip,extreme,ipm,dissensus \
      --param attack.fraction=$fractions --out "$out/updates-$n"
    build/murmur sweep $cfg --set attack.every=0 --param attack.kind=none,extreme \
      --param attack.fraction=$fractions --out "$out/extreme-once-$n"
    build/murmur sweep $cfg --set attack.every=4 --param attack.kind=none,mean_shift \
      --param attack.fraction=$fractions --out "$out/mean_shift-every4-$n"
    build/murmur sweep $cfg --set attack.noise=0 --param attack.kind=none,gaussian \
      --param attack.fraction=$fractions --out "$out/gaussian-noise0-$n"
    build/murmur sweep $cfg --set attack.scale=999 --param attack.kind=none,extreme \
      --param attack.fraction=$fractions --out "$out/extreme-999-$n"
    build/murmur sweep $cfg --set attack.placement=cut --param attack.kind=none,dissensus \
      --param attack.fraction=$fractions --out "$out/dissensus-cut-$n"
  fi
  if [[ $what != updates ]]; then
    build/murmur sweep $cfg --set verify.rate=0.005 \
      --param attack.kind=none,skip_product,perturb,half_batch,replay \
      --param attack.fraction=$fractions --out "$out/cheats-$n"
  fi
}
mkdir -p "$out"
table 16 > "$out/log-16.txt" 2>&1 &
p16=$!
table 64 > "$out/log-64.txt" 2>&1 &
p64=$!
wait $p16
wait $p64
for t in updates extreme-once mean_shift-every4 gaussian-noise0 extreme-999 dissensus-cut cheats; do
  for n in 16 64; do
    [[ -f "$out/$t-$n/sweep.md" ]] || continue
    echo
    echo "## $t, N = $n"
    cat "$out/$t-$n/sweep.md"
  done
done
