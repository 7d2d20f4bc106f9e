#!/usr/bin/env python3
"""Simulator scaling: time per peer-step at N peers, against the bare step.

How it counts: for each N, `murmur sim CONFIG` runs twice with sim.peers = N,
once for S1 and once for S2 steps per peer (train.epochs set so each peer
does that many steps; train.eval_every beyond the run, so only the final
evaluation happens, on data.test_samples = 500 unless --set says otherwise).
S1 = max(16, peer-steps / N) rounded up to a multiple of --align (64, the
segment length of the default verification, so every difference holds the
same number of segment boundaries per step), S2 = 2 x S1.
Per peer-step = (T(S2) - T(S1)) / (N * (S2 - S1)): start-up, the dataset
load and the final evaluation (the same in both runs) cancel. Two clocks:
  wall  summary.json's wall_time_s: what the goal is stated in, but on a
        shared machine it counts the time other processes held the cores;
  cpu   the run's user + system CPU time (wait4's rusage): what the
        simulator itself spent, far less sensitive to load (not immune:
        caches and memory bandwidth are shared too).
Trust the wall ratios only when the load average printed beside them was
below the core count; otherwise read the cpu ones.
The bare step is the same difference at N = 1 (a peer with no neighbour:
training, no gossip), so the compute of one step at the same batch.
Repeats interleave: each repeat runs every N once, alternating which of the
two lengths goes first, and the load average is read before and after each
run. Printed: medians with the spread (min..max) over repeats, the ratios of
medians, and the load (the worst 1-minute load seen and the mean).
Peak memory per peer: (max RSS at N - max RSS at N = 1) / (N - 1), from
wait4's ru_maxrss of the S2 run: the dataset and the process are in both.

Several binaries (--murmur A,B: a change against a baseline) are measured
in the same repeats, one after the other at every N (A B A B ...), so both
see the same load; each gets its own table.

Usage: bench/sim_scaling.py [--murmur build/murmur[,OTHER]] [--config configs/fmnist-gossip.toml]
         [--peers 8,64,128,256] [--repeats 3] [--peer-steps 7680] [--align 64] [--set KEY=VALUE ...]
Prints one line per N and a JSON line per N ("event": "sim_scaling").
"""
import argparse
import json
import os
import statistics
import subprocess
import tempfile


def load1():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def steps_for(n, peer_steps, align):
    # Fewer steps at large N: each difference covers about peer_steps
    # peer-steps, enough that it stands above the start-up's noise. S1 is
    # rounded up to a multiple of `align` (verify.segment's default, 64): a
    # prover writes a segment boundary every 64 steps, so each difference
    # then holds exactly one per 64 steps at every N (unaligned, N = 256's
    # 30 -> 60 steps held one per 30).
    s1 = max(16, peer_steps // n)
    if align > 1:
        s1 = -(-s1 // align) * align
    return s1, 2 * s1


def run_once(a, murmur, n, steps, extra, loads):
    shard = 60000 // n  # Fashion-MNIST train set, iid shards
    # The simulator runs llround(epochs x ceil(shard / batch)) steps.
    epochs = steps / -(-shard // a.batch)
    with tempfile.TemporaryDirectory(prefix="sim_scaling_") as out:
        cmd = [murmur, "sim", a.config, "--quiet", "--out", out,
               "--set", f"sim.peers={n}", "--set", f"train.epochs={epochs:.6f}",
               "--set", f"train.batch={a.batch}", "--set", "train.eval_every=1000000000",
               "--set", "data.test_samples=500"]
        for kv in extra:
            cmd += ["--set", kv]
        loads.append(load1())
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        _, status, ru = os.wait4(p.pid, 0)
        err = p.stderr.read()
        loads.append(load1())
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"failed ({os.waitstatus_to_exitcode(status)}): {' '.join(cmd)}\n{err}")
        with open(os.path.join(out, "summary.json")) as f:
            s = json.load(f)
        return {"wall_s": s["wall_time_s"], "cpu_s": ru.ru_utime + ru.ru_stime, "steps": s["steps"],
                "rss_mb": ru.ru_maxrss / 1024.0}


def spread(xs):
    return f"{statistics.median(xs):.3f} ({min(xs):.3f}..{max(xs):.3f})"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--murmur", default="build/murmur", help="binary, or binaries separated by commas")
    ap.add_argument("--config", default="configs/fmnist-gossip.toml")
    ap.add_argument("--peers", default="8,64,128,256")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--peer-steps", type=int, default=7680, help="peer-steps per difference (S1 = this / N)")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--align", type=int, default=64,
                    help="round S1 up to a multiple of this (verify.segment; 1: no rounding)")
    ap.add_argument("--set", action="append", default=[], help="extra config override, repeatable")
    a = ap.parse_args()
    ns = [1] + [int(x) for x in a.peers.split(",")]
    binaries = a.murmur.split(",")
    wall = {b: {n: [] for n in ns} for b in binaries}
    cpu = {b: {n: [] for n in ns} for b in binaries}
    rss = {b: {n: [] for n in ns} for b in binaries}
    loads = []
    for rep in range(a.repeats):
        for n in ns:  # interleaved: every N once per repeat, every binary once per N
            s1, s2 = steps_for(n, a.peer_steps, a.align)
            order = (s1, s2) if rep % 2 == 0 else (s2, s1)
            for b in binaries:
                r = {s: run_once(a, b, n, s, a.set, loads) for s in order}
                d_steps = (r[s2]["steps"] - r[s1]["steps"]) * n
                wall[b][n].append((r[s2]["wall_s"] - r[s1]["wall_s"]) / d_steps * 1e3)
                cpu[b][n].append((r[s2]["cpu_s"] - r[s1]["cpu_s"]) / d_steps * 1e3)
                rss[b][n].append(r[s2]["rss_mb"])
    load = {"max": max(loads), "mean": statistics.fmean(loads), "cores": os.cpu_count()}
    print(f"load average (1 min) over the runs: max {load['max']:.2f}, mean {load['mean']:.2f} on {load['cores']} cores"
          + ("" if load["max"] < load["cores"] else "; above the core count: read the cpu ratios, not wall"))
    print(f"{a.repeats} interleaved repeats, {a.peer_steps} peer-steps per difference; medians (min..max), ms per peer-step")
    for b in binaries:
        report(a, b, ns, wall[b], cpu[b], rss[b], load, len(binaries) > 1)


def report(a, b, ns, wall, cpu, rss, load, named):
    if named:
        print(f"-- {b}")
    med = {k: {n: statistics.median(v[n]) for n in ns} for k, v in (("wall", wall), ("cpu", cpu))}
    print(f"N=   1 (bare step): wall {spread(wall[1])}, cpu {spread(cpu[1])}")
    rss1 = statistics.median(rss[1])
    for n in ns[1:]:
        ratios = {}
        for k in ("wall", "cpu"):
            ratios[k] = {"vs_bare": med[k][n] / med[k][1], "vs_n8": med[k][n] / med[k][8] if 8 in ns else None}
        mem = (statistics.median(rss[n]) - rss1) / (n - 1)
        r8 = lambda k: f", x{ratios[k]['vs_n8']:.2f} N=8" if ratios[k]["vs_n8"] else ""
        print(f"N={n:4d}: wall {spread(wall[n])} x{ratios['wall']['vs_bare']:.2f} bare{r8('wall')}; "
              f"cpu {spread(cpu[n])} x{ratios['cpu']['vs_bare']:.2f} bare{r8('cpu')}; "
              f"max RSS {statistics.median(rss[n]):.0f} MB, {mem:.2f} MB/peer above N=1")
        print(json.dumps({"event": "sim_scaling", "murmur": b, "peers": n, "repeats": a.repeats,
                          "peer_steps": a.peer_steps,
                          "wall_ms": med["wall"][n], "wall_spread": [min(wall[n]), max(wall[n])],
                          "cpu_ms": med["cpu"][n], "cpu_spread": [min(cpu[n]), max(cpu[n])],
                          "bare_wall_ms": med["wall"][1], "bare_cpu_ms": med["cpu"][1], "ratios": ratios,
                          "max_rss_mb": statistics.median(rss[n]), "mb_per_peer": mem, "load": load}))

if __name__ == "__main__":
    main()
