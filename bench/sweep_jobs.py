#!/usr/bin/env python3
"""murmur sweep --jobs N against --jobs 1: wall time, and the same results.

What it runs: `murmur sweep CONFIG --param KEY=V1,...` (default: four values
of gossip.threshold on configs/fmnist-gossip.toml, the default simulation,
shortened to train.epochs = 6 so that a configuration takes ~15 s of CPU:
measured 2.75 s at 0.5 epochs and 6.0 s at 2, ~1.7 s + 2.2 s per epoch),
once with --jobs 1 and once with --jobs N per repeat, interleaved
(1, N, 1, N, ...). Wall time is the sweep process's, start to exit (data
loading and the final evaluations included: they are part of a sweep).
Checks that every sweep.csv is the first --jobs 1 one byte for byte but for
the cells measured in wall time (wall_time_s, detect_overhead_pct,
check_overhead_pct, commit_overhead_pct: they differ between two --jobs 1
sweeps too), and that each run's metrics.jsonl is identical.
Prints one line per sweep with its CPU time (user + system, all threads)
over its wall time, the cores it got (under load, other processes take
them: --jobs N cannot be faster than the CPU it is given, and an unchanged
CPU time says the jobs cost nothing extra), the 1-minute load average
before it, the median ratio wall(--jobs 1) / wall(--jobs N) with its spread (min..max over
the repeats' pairs), and a JSON line ("event": "sweep_jobs"). Exits 1 if a
result differs. The goal (issue 16): ratio >= 1.7 at N = 2 on 2 cores.

Usage: bench/sweep_jobs.py [--murmur build/murmur] [--config configs/fmnist-gossip.toml]
         [--param gossip.threshold=0.005,0.01,0.02,0.04] [--epochs 6] [--jobs 2]
         [--repeats 3] [--set KEY=VALUE ...]
"""
import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

WALL_COLUMNS = {"wall_time_s", "detect_overhead_pct", "check_overhead_pct", "commit_overhead_pct"}


def masked_csv(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    header = rows[0]
    return [header] + [["*" if header[c] in WALL_COLUMNS else v for c, v in enumerate(r)] for r in rows[1:]]


def metrics(out):
    runs = {}
    for name in sorted(os.listdir(out)):
        m = os.path.join(out, name, "metrics.jsonl")
        if os.path.isfile(m):
            with open(m, "rb") as f:
                runs[name] = f.read()
    return runs


def sweep(a, jobs, out):
    cmd = [a.murmur, "sweep", a.config, "--param", a.param, "--set", f"train.epochs={a.epochs}",
           "--jobs", str(jobs), "--out", out]
    for kv in a.set:
        cmd += ["--set", kv]
    load = os.getloadavg()[0]
    with tempfile.TemporaryFile(mode="w+") as log:
        t0 = time.monotonic()
        p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.monotonic() - t0
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            log.seek(0)
            raise SystemExit(f"failed ({code}): {' '.join(cmd)}\n{log.read()}")
    return wall, load, ru.ru_utime + ru.ru_stime


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--murmur", default="build/murmur")
    ap.add_argument("--config", default="configs/fmnist-gossip.toml")
    ap.add_argument("--param", default="gossip.threshold=0.005,0.01,0.02,0.04")
    ap.add_argument("--epochs", type=float, default=6)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    a = ap.parse_args()
    cores = len(os.sched_getaffinity(0))
    print(f"sweep_jobs: {a.param} on {a.config}, train.epochs={a.epochs}; --jobs 1 against --jobs {a.jobs}, "
          f"{a.repeats} repeats interleaved; {cores} cores given")
    if cores < a.jobs:
        print(f"note: {cores} cores < --jobs {a.jobs}: murmur runs {cores} at once")
    walls = {1: [], a.jobs: []}
    cpus = {1: [], a.jobs: []}
    reference = None
    same = True
    with tempfile.TemporaryDirectory(prefix="sweep_jobs_") as tmp:
        for r in range(a.repeats):
            for jobs in (1, a.jobs):
                out = os.path.join(tmp, f"r{r}-j{jobs}")
                wall, load, cpu = sweep(a, jobs, out)
                walls[jobs].append(wall)
                cpus[jobs].append(cpu)
                result = (masked_csv(os.path.join(out, "sweep.csv")), metrics(out))
                if reference is None:
                    reference = result
                ok = result == reference
                same = same and ok
                print(f"  repeat {r + 1} --jobs {jobs}: {wall:7.2f} s, CPU {cpu:7.2f} s = {cpu / wall:.2f} cores"
                      f"  (load before {load:.2f})"
                      f"  sweep.csv and metrics {'identical' if ok else 'DIFFER'}")
                sys.stdout.flush()
    ratios = [w1 / wn for w1, wn in zip(walls[1], walls[a.jobs])]
    med = statistics.median(ratios)
    print(f"--jobs 1 median {statistics.median(walls[1]):.2f} s, --jobs {a.jobs} median "
          f"{statistics.median(walls[a.jobs]):.2f} s; ratio median {med:.2f}x (spread {min(ratios):.2f}..{max(ratios):.2f}); "
          f"results {'identical' if same else 'DIFFER'}; load now {os.getloadavg()[0]:.2f}")
    print(json.dumps({"event": "sweep_jobs", "config": a.config, "param": a.param, "epochs": a.epochs,
                      "jobs": a.jobs, "cores": cores, "wall_1_s": walls[1], f"wall_{a.jobs}_s": walls[a.jobs],
                      "cpu_1_s": cpus[1], f"cpu_{a.jobs}_s": cpus[a.jobs], "ratios": ratios, "ratio_median": med, "identical": same, "load_end": os.getloadavg()[0]}))
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
