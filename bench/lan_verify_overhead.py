#!/usr/bin/python3
"""Wall-time cost of verification on 3 `murmur peer` processes on loopback.

What it runs, one trio at a time, `--repeats` times, interleaved
(off, on, off, on, ...; the order alternates between repeats, since this box
is shared and noisy):

  off: 3 `murmur peer` processes on 127.0.0.1 (CurveZMQ), config
       configs/fmnist-gossip.toml, peer.count=3, train.epochs=--epochs,
       gossip.topology=complete (each peer gossips with, and verifies, the
       other two), train.eval_every=--eval-every, verify.rate=0 (murmur
       peer verifies by default), plus every --set;
  on:  the same with verify.rate=--rate, verify.scheme=--scheme,
       verify.segment=--segment; with --rate auto none of the three: the
       default verification (run/default_verification.hpp).

Peer 0 starts first, peers 1 and 2 join it (as tests/e2e do); every peer
waits for all three before training.

What it reports, per run and as medians per side:
  * train_s: the slowest peer's training time: its summary.json
    wall_time_s minus the seconds before "training starts" in its log
    (data loading and the wait for the others are left out);
  * trio_s: launch of peer 0 to the exit of the last peer;
  * rss_mib: the largest peak RSS of the three peers (wait4's rusage);
  * /proc/loadavg (1 min) before each run;
  * on the verified side, the segment counters summed over the peers
    (challenged, passed, failed, missed), the slowest in-time answer any
    peer saw, and the quarantines (must be none).
The ratio on/off of the medians is the cost. Timings are not assertions.

Usage (from the project root, after building build/murmur):
  bench/lan_verify_overhead.py [--murmur build/murmur] [--epochs 2]
      [--rate 0.005|auto] [--scheme segment] [--segment 64] [--repeats 3]
      [--eval-every 1000] [--timeout 900] [--set KEY=VALUE ...] [--keep]
      [--only on|off --wrap0 "heaptrack -o FILE"]   (a profile of peer 0)
"""
import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def run_trio(a, scratch, name, extra):
    """Runs 3 peers; returns a dict of measurements."""
    d = os.path.join(scratch, name)
    os.makedirs(d)
    ports = [free_port() for _ in range(3)]
    with open(os.path.join(d, "authorized_peers"), "w") as auth:
        for i in range(3):
            k = os.path.join(d, "keys%d" % i)
            subprocess.run([a.murmur, "keygen", "--out", k], check=True, stdout=subprocess.DEVNULL)
            with open(os.path.join(k, "peer.pub")) as f:
                auth.write("%s tcp://127.0.0.1:%d host-%d\n" % (f.read().strip()[:40], ports[i], i))
    common = ["--set", "peer.count=3", "--set", "train.epochs=%g" % a.epochs, "--set", "gossip.topology=complete",
              "--set", "train.eval_every=%d" % a.eval_every]
    for kv in a.set:
        common += ["--set", kv]
    procs, logs = [], []
    load = loadavg()
    t0 = time.monotonic()
    for i in range(3):
        wrap = a.wrap0 if i == 0 and a.wrap0 else a.wrap
        args = (wrap.split() if wrap else []) + [a.murmur, "peer", "--config", "configs/fmnist-gossip.toml", "--listen",
                "tcp://127.0.0.1:%d" % ports[i], "--quiet", "--out", os.path.join(d, "run%d" % i),
                "--set", "peer.index=%d" % i, "--set", "peer.keys=" + os.path.join(d, "keys%d" % i),
                "--set", "peer.authorized_peers=" + os.path.join(d, "authorized_peers")] + common + extra
        if i > 0:
            args += ["--join", "tcp://127.0.0.1:%d" % ports[0]]
        log = open(os.path.join(d, "peer%d.log" % i), "w")
        logs.append(log)
        procs.append(subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT))
        if i == 0:
            time.sleep(0.3)
    rcs, rss = [], []
    for p in procs:
        # wait4, not wait: its rusage is this peer's own peak RSS.
        deadline = t0 + max(1.0, a.timeout)
        while True:
            pid, status, usage = os.wait4(p.pid, os.WNOHANG)
            if pid == p.pid:
                rcs.append(os.waitstatus_to_exitcode(status))
                rss.append(usage.ru_maxrss / 1024.0)
                p.returncode = rcs[-1]
                break
            if time.monotonic() > deadline:
                p.kill()
                _, _, usage = os.wait4(p.pid, 0)
                rcs.append(-1)
                rss.append(usage.ru_maxrss / 1024.0)
                p.returncode = -1
                break
            time.sleep(0.05)
    trio = time.monotonic() - t0
    for log in logs:
        log.close()
    out = {"name": name, "load": load, "trio_s": trio, "rcs": rcs, "rss_mib": max(rss), "rss_each": [round(x, 1) for x in rss], "train_s": 0.0, "challenged": 0, "passed": 0,
           "failed": 0, "quarantines": 0, "missed": 0, "max_answer_ms": 0.0}
    for i in range(3):
        with open(os.path.join(d, "peer%d.log" % i)) as f:
            text = f.read()
        m = re.search(r"training starts at unix_ms \d+ \(([0-9.]+) s after start\)", text)
        with open(os.path.join(d, "run%d" % i, "summary.json")) as f:
            s = json.load(f)
        start = float(m.group(1)) if m else 0.0
        out["train_s"] = max(out["train_s"], s["wall_time_s"] - start)
        v = s.get("verification", {})
        out["challenged"] += v.get("segments_challenged", v.get("challenges", 0))
        out["passed"] += v.get("segments_passed", v.get("checks_passed", 0))
        out["failed"] += v.get("segments_failed", v.get("checks_failed", 0))
        out["quarantines"] += len(s.get("quarantined", []))
        out["missed"] += v.get("challenges_missed", 0)
        out["max_answer_ms"] = max(out["max_answer_ms"], v.get("max_answer_ms") or 0.0)
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--murmur", default="build/murmur")
    p.add_argument("--epochs", type=float, default=2)
    p.add_argument("--rate", default="0.005", help="a rate, or auto: the default verification")
    p.add_argument("--scheme", default="segment")
    p.add_argument("--segment", type=int, default=64)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--eval-every", type=int, default=1000)
    p.add_argument("--timeout", type=float, default=900)
    p.add_argument("--set", action="append", default=[])
    p.add_argument("--keep", action="store_true")
    p.add_argument("--wrap0", default="", help="a command line peer 0 runs under (a profiler: heaptrack -o FILE)")
    p.add_argument("--wrap", default="", help="a command line every peer runs under (peer 0: --wrap0 if given)")
    p.add_argument("--only", choices=["off", "on"], help="run one side only (with --wrap0: a profile)")
    a = p.parse_args()
    off = ["--set", "verify.rate=0"]
    on = [] if a.rate == "auto" else ["--set", "verify.rate=%g" % float(a.rate), "--set", "verify.scheme=" + a.scheme,
                                      "--set", "verify.segment=%d" % a.segment]
    print("command: bench/lan_verify_overhead.py --epochs %g --rate %s --scheme %s --segment %d --repeats %d%s"
          % (a.epochs, a.rate, a.scheme, a.segment, a.repeats, "".join(" --set " + kv for kv in a.set)))
    scratch = tempfile.mkdtemp(prefix="lan_verify_overhead.")
    runs = {"off": [], "on": []}
    try:
        for r in range(a.repeats):
            order = ["off", "on"] if r % 2 == 0 else ["on", "off"]
            for side in order:
                if a.only and side != a.only:
                    continue
                m = run_trio(a, scratch, "%s%d" % (side, r), on if side == "on" else off)
                runs[side].append(m)
                print("%-4s repeat %d: train %.2f s, trio %.2f s, peak RSS %.1f MiB %s, loadavg %.2f, exit codes %s%s" % (
                    side, r, m["train_s"], m["trio_s"], m["rss_mib"], m["rss_each"], m["load"], m["rcs"],
                    ", challenged %d passed %d failed %d (segments, or steps with --scheme step), missed %d, "
                    "slowest answer %.0f ms, quarantines %d" % (
                        m["challenged"], m["passed"], m["failed"], m["missed"], m["max_answer_ms"], m["quarantines"])
                    if side == "on" else ""))
                sys.stdout.flush()
    finally:
        if a.keep:
            print("kept", scratch)
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    if a.only:
        return 0
    med = {s: {k: statistics.median(m[k] for m in runs[s]) for k in ("train_s", "trio_s", "rss_mib", "load")} for s in runs}
    print("| | off | on (%s) | on/off |" % ("the default" if a.rate == "auto" else
                                         "rate %s, %s, K = %d" % (a.rate, a.scheme, a.segment)))
    print("|---|---|---|---|")
    for k in ("train_s", "trio_s", "rss_mib"):
        print("| median %s | %.2f | %.2f | %.3fx |" % (k, med["off"][k], med["on"][k], med["on"][k] / med["off"][k]))
    print("| median loadavg before | %.2f | %.2f | |" % (med["off"]["load"], med["on"]["load"]))
    bad = [m for s in runs for m in runs[s] if any(rc != 0 for rc in m["rcs"])]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
