#!/usr/bin/env python3
"""Simulator scaling: wall time per peer-step at N peers, against the bare step.

How it counts: for each N, `murmur sim CONFIG` runs twice with sim.peers = N,
once for S1 and once for S2 steps per peer (train.epochs set so each peer
does that many steps; train.eval_every beyond the run, so only the final
evaluation happens, on data.test_samples = 500 unless --set says otherwise).
Per peer-step = (wall(S2) - wall(S1)) / (N * (S2 - S1)),
wall from summary.json's wall_time_s: start-up, the dataset load and the
final evaluation (the same in both runs) cancel. The bare step is the same
difference at N = 1 (a peer with no neighbour: training, no gossip), so the
compute of one step at the same batch. The repeats interleave (every N, then
again) and the medians are printed with the spread (min..max).
Peak memory per peer: (max RSS at N - max RSS at N = 1) / (N - 1), from
wait4's ru_maxrss of the S2 run: the dataset and the process are in both.

Usage: bench/sim_scaling.py [--murmur build/murmur] [--config configs/fmnist-gossip.toml]
         [--peers 8,64,128,256] [--repeats 3] [--set KEY=VALUE ...]
Prints one line per N and a JSON line per N ("event": "sim_scaling").
"""
import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time


def steps_for(n):
    # Fewer steps at large N: each run does about the same number of peer-steps,
    # enough that their time stands above the start-up's noise (at N = 256 the
    # start-up alone took ~18 s, 9 and 18 steps per peer the same wall time).
    s1 = max(16, 7680 // n)
    return s1, 2 * s1


def run_once(a, n, steps, extra):
    shard = 60000 // n  # Fashion-MNIST train set, iid shards
    epochs = steps * a.batch / shard
    with tempfile.TemporaryDirectory(prefix="sim_scaling_") as out:
        cmd = [a.murmur, "sim", a.config, "--quiet", "--out", out,
               "--set", f"sim.peers={n}", "--set", f"train.epochs={epochs:.6f}",
               "--set", f"train.batch={a.batch}", "--set", "train.eval_every=1000000000",
               "--set", "data.test_samples=500"]
        for kv in extra:
            cmd += ["--set", kv]
        t0 = time.monotonic()
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        _, status, ru = os.wait4(p.pid, 0)
        err = p.stderr.read()
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"failed ({os.waitstatus_to_exitcode(status)}): {' '.join(cmd)}\n{err}")
        with open(os.path.join(out, "summary.json")) as f:
            s = json.load(f)
        return {"wall_s": s["wall_time_s"], "steps": s["steps"], "rss_mb": ru.ru_maxrss / 1024.0,
                "elapsed_s": time.monotonic() - t0}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--murmur", default="build/murmur")
    ap.add_argument("--config", default="configs/fmnist-gossip.toml")
    ap.add_argument("--peers", default="8,64,128,256")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--set", action="append", default=[], help="extra config override, repeatable")
    a = ap.parse_args()
    ns = [1] + [int(x) for x in a.peers.split(",")]
    per = {n: [] for n in ns}
    rss = {n: [] for n in ns}
    for _ in range(a.repeats):
        for n in ns:  # interleaved: every N once per repeat
            s1, s2 = steps_for(n)
            r1 = run_once(a, n, s1, a.set)
            r2 = run_once(a, n, s2, a.set)
            d_steps = (r2["steps"] - r1["steps"]) * n
            per[n].append((r2["wall_s"] - r1["wall_s"]) / d_steps * 1e3)
            rss[n].append(r2["rss_mb"])
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    bare = statistics.median(per[1])
    at8 = statistics.median(per[8]) if 8 in per else None
    rss1 = statistics.median(rss[1])
    print(f"load {' '.join(load)}; bare step (N=1): {bare:.3f} ms (spread {min(per[1]):.3f}..{max(per[1]):.3f})")
    for n in ns[1:]:
        m = statistics.median(per[n])
        mem = (statistics.median(rss[n]) - rss1) / (n - 1)
        line = (f"N={n:4d}: {m:.3f} ms/peer-step (spread {min(per[n]):.3f}..{max(per[n]):.3f}), "
                f"x{m / bare:.2f} bare" + (f", x{m / at8:.2f} N=8" if at8 else "") +
                f"; max RSS {statistics.median(rss[n]):.0f} MB, {mem:.2f} MB/peer above N=1")
        print(line)
        print(json.dumps({"event": "sim_scaling", "peers": n, "ms_per_peer_step": m, "spread": [min(per[n]), max(per[n])],
                          "bare_ms": bare, "vs_bare": m / bare, "vs_n8": (m / at8) if at8 else None,
                          "max_rss_mb": statistics.median(rss[n]), "mb_per_peer": mem, "load": load}))


if __name__ == "__main__":
    main()
