#!/usr/bin/env python3
"""Time to accuracy against bytes on a heterogeneous WAN (issue 16).

Runs each strategy of STRATEGIES on configs/fmnist-wan.toml with
`murmur sim` (one after another: the machine's cores are shared), reads
each run's curve.tsv (virtual time, bytes sent by all peers, mean test
accuracy at every evaluation) and summary.json, and writes

  docs/wan.md          the table: time to the target accuracy (virtual s),
                       the bytes sent until then, final accuracy, bytes
                       against the synchronous ring all-reduce
  docs/wan-frontier.png time to the target against bytes, per strategy,
                       and every strategy's accuracy over virtual time

Everything is virtual time and bytes: the numbers do not depend on the
machine's load. Python 3 standard library and gnuplot only.

  scripts/wan_frontier.py [--murmur build/murmur] [--out runs/wan]
                          [--seeds 1] [--reuse] [--only NAME,...]

With --only, the table's rows of the other strategies are kept as the
table has them (their runs are not repeated), and the plot shows them as
points only (no curve).
"""
import argparse
import json
import math
import os
import subprocess
import sys
import time

# (name, what it is, --set overrides on the config). The first is today's
# strategy, the last the synchronous baseline.
STRATEGIES = [
    ("ring-tau0.01", "today: uniform grid gossip on the ring, tau 0.01, gamma 0.5", []),
    ("ring-tau0.03", "ring, uniform tau 0.03", ["gossip.threshold=0.03"]),
    ("ring-tau0.05", "ring, uniform tau 0.05", ["gossip.threshold=0.05"]),
    ("ring-tau0.01-link0.5", "ring, tau 0.01 scaled per peer to its slowest link, exponent 0.5",
     ["gossip.link_tau_exponent=0.5"]),
    ("ring-tau0.02-link0.25", "ring, tau 0.02 scaled per peer to its slowest link, exponent 0.25",
     ["gossip.threshold=0.02", "gossip.link_tau_exponent=0.25"]),
    ("hypercube-one_peer", "hypercube one-peer schedule, tau 0.01, gamma 0.7, robust none (fmnist-frontier's)",
     ["gossip.topology=hypercube", "gossip.schedule=one_peer", "gossip.gamma=0.7", "gossip.robust=none"]),
    ("ring-tau0.01-rate", "ring, tau 0.01, contribution scaling by observed rates (gossip.contribution = rate)",
     ["gossip.contribution=rate"]),
    ("ring-tau0.03-rate", "ring, tau 0.03, contribution scaling by observed rates (gossip.contribution = rate)",
     ["gossip.threshold=0.03", "gossip.contribution=rate"]),
    ("ring-tau0.03-rate-link8", "ring, tau 0.03, rate, per-link send periods up to 8 (gossip.link_period_max = 8)",
     ["gossip.threshold=0.03", "gossip.contribution=rate", "gossip.link_period_max=8"]),
    ("allreduce", "synchronous ring all-reduce every step (gossip.mode = allreduce)", ["gossip.mode=allreduce"]),
]
BASELINE, ALLREDUCE = "ring-tau0.01", "allreduce"


def run(murmur, config, out, sets, reuse):
    if reuse and os.path.exists(os.path.join(out, "summary.json")):
        return
    cmd = [murmur, "sim", config, "--out", out, "--quiet"]
    for s in sets:
        cmd += ["--set", s]
    print("+", " ".join(cmd), flush=True)
    t0 = time.time()
    subprocess.run(cmd, check=True)
    print(f"  {time.time() - t0:.0f} s wall", flush=True)


def curve(out):
    """(virtual_s, bytes_sent, mean_test_acc) per evaluation."""
    rows = []
    with open(os.path.join(out, "curve.tsv")) as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            c = line.split("\t")
            rows.append((float(c[0]), int(float(c[1])), float(c[2])))
    return rows


def first_reaching(rows, target):
    """The first evaluation at or above target: (virtual_s, bytes), or None."""
    for t, b, acc in rows:
        if not math.isnan(acc) and acc >= target:
            return t, b
    return None


def mean(xs):
    return sum(xs) / len(xs) if xs else float("nan")


def fmt(x, spec):
    return "not reached" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--murmur", default="build/murmur")
    ap.add_argument("--config", default="configs/fmnist-wan.toml")
    ap.add_argument("--out", default="runs/wan")
    ap.add_argument("--seeds", default="1", help="comma-separated run.seed values; times and bytes are means")
    ap.add_argument("--target", type=float, default=0.85)
    ap.add_argument("--second", type=float, default=0.84, help="a second, lower target for the table")
    ap.add_argument("--reuse", action="store_true", help="keep runs whose summary.json exists")
    ap.add_argument("--only", default="", help="comma-separated strategy names (default: all)")
    ap.add_argument("--set", action="append", default=[], help="an override for every strategy (development)")
    ap.add_argument("--table", default="docs/wan.md")
    ap.add_argument("--plot", default="docs/wan-frontier.png")
    a = ap.parse_args()
    seeds = [int(s) for s in a.seeds.split(",") if s]
    only = set(x for x in a.only.split(",") if x)
    strategies = [s for s in STRATEGIES if not only or s[0] in only]
    results = {}
    kept = kept_rows(a.table, [s for s in STRATEGIES if s not in strategies]) if only else {}
    for name, what, sets in strategies:
        runs = []
        for seed in seeds:
            out = os.path.join(a.out, f"{name}-s{seed}")
            run(a.murmur, a.config, out, sets + a.set + [f"run.seed={seed}"], a.reuse)
            with open(os.path.join(out, "summary.json")) as f:
                s = json.load(f)
            rows = curve(out)
            runs.append({"rows": rows, "hit": first_reaching(rows, a.target), "hit2": first_reaching(rows, a.second),
                         "final": s["final_test_accuracy"],
                         "bytes": s["bytes_sent_total"], "virtual_s": s["virtual_time_s"]})
        hits = [r["hit"] for r in runs]
        reached = all(h is not None for h in hits)
        hits2 = [r["hit2"] for r in runs]
        reached2 = all(h is not None for h in hits2)
        results[name] = {
            "what": what, "sets": sets, "runs": runs, "reached": reached,
            "t": mean([h[0] for h in hits]) if reached else None,
            "b": mean([h[1] for h in hits]) if reached else None,
            "t2": mean([h[0] for h in hits2]) if reached2 else None,
            "b2": mean([h[1] for h in hits2]) if reached2 else None,
            "final": mean([r["final"] for r in runs]), "bytes": mean([r["bytes"] for r in runs]),
            "end_s": mean([r["virtual_s"] for r in runs]),
        }
    results.update(kept)
    strategies = [s for s in STRATEGIES if s[0] in results]
    write_table(a, seeds, strategies, results)
    write_plot(a, strategies, results)


def kept_rows(table, strategies):
    """The table's rows of strategies not run now: the row as written, and
    the numbers the other rows' ratios need (times, bytes)."""
    if not os.path.exists(table):
        return {}
    with open(table) as f:
        lines = [l for l in f.read().split(NOTES_MARKER)[0].splitlines() if l.startswith("| ")]
    num = lambda c: None if c.strip() in ("not reached", "n/a") else float(c.strip().rstrip("x %"))
    kept = {}
    for name, what, sets in strategies:
        for l in lines:
            if f"(`{name}`)" not in l:
                continue
            c = l.strip().strip("|").split("|")
            b = num(c[4])
            kept[name] = {"what": what, "sets": sets, "runs": [], "row": l, "reached": c[1].strip() != "not reached",
                          "t": num(c[1]), "b": b * 1e6 if b is not None else None, "t2": num(c[6]), "b2": None,
                          "final": num(c[8]) / 100, "bytes": num(c[9]) * 1e6}
    return kept


def ratio(x, y):
    return x / y if x is not None and y else None


def write_table(a, seeds, strategies, results):
    base = results.get(BASELINE, {})
    ar = results.get(ALLREDUCE, {})
    p1, p2 = 100 * a.target, 100 * a.second
    lines = [
        f"| strategy | time to {p1:.0f} % (virtual s) | / today's | all-reduce's / this | bytes to {p1:.0f} % (MB) |"
        f" all-reduce's bytes to {p1:.0f} % / this | time to {p2:.0f} % (s) | / today's | final accuracy |"
        f" bytes, whole run (MB) | all-reduce's whole-run bytes / this |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    x = lambda v, spec: "n/a" if v is None else format(v, spec) + "x"  # a ratio with a side not reached
    for name, what, sets in strategies:
        r = results[name]
        if "row" in r:  # kept from the table as it was
            lines.append(r["row"])
            continue
        t, b, t2 = r["t"], r["b"], r["t2"]
        lines.append("| {} (`{}`) | {} | {} | {} | {} | {} | {} | {} | {:.2f} % | {:.1f} | {} |".format(
            what, name, fmt(t, ".2f"), x(ratio(t, base.get("t")), ".2f"), x(ratio(ar.get("t"), t), ".0f"),
            fmt(b / 1e6 if b is not None else None, ".1f"), x(ratio(ar.get("b"), b), ".0f"), fmt(t2, ".2f"),
            x(ratio(t2, base.get("t2")), ".2f"), 100 * r["final"], r["bytes"] / 1e6,
            x(ratio(ar.get("bytes"), r["bytes"]), ".0f")))
    sets_text = "\n".join("- `{}`: {}".format(n, " ".join("--set " + s for s in st) or "(the config as it is)")
                          for n, _, st in strategies)
    text = TABLE_HEAD.format(target=p1, second=p2, seeds=", ".join(map(str, seeds)), config=a.config,
                             extra=" ".join("--set " + s for s in a.set) or "none")
    # Notes written by hand below the marker survive a rerun.
    notes = ""
    if os.path.exists(a.table):
        with open(a.table) as f:
            old = f.read()
        if NOTES_MARKER in old:
            notes = old[old.index(NOTES_MARKER) + len(NOTES_MARKER):]
    with open(a.table, "w") as f:
        f.write(text + "\n".join(lines) + "\n\nEach strategy's overrides on the config:\n\n" + sets_text + "\n" +
                TABLE_TAIL + NOTES_MARKER + notes)
    print("\n".join(lines))


NOTES_MARKER = "\n<!-- written by hand below this line; scripts/wan_frontier.py keeps it -->\n"
TABLE_HEAD = """# Time to accuracy on a heterogeneous WAN (issue 16)

Written by `scripts/wan_frontier.py` down to the notes at the end, which
are written by hand and kept when it runs again. Config
`{config}`: 8 peers, MLP on Fashion-MNIST, peers 0-3 on home links
(10 Mbit/s up, 50 down, 10 ms), peers 4-7 on office links (1 Gbit/s),
compute speeds spread 4x. Seeds {seeds} (times and bytes are means);
overrides for every row: {extra}. Virtual time and bytes only: the
numbers do not depend on the machine's load.

Time to {target:.0f} %: the virtual time of the first evaluation (every
`train.eval_every` steps of the fastest peer; every that many rounds for
the all-reduce) at which the peers' mean test accuracy on the whole test
set is at least {target:.0f} % ("not reached": not in every seed's run); bytes to
{target:.0f} %: what all peers had sent by then; {second:.0f} %: the same for a
lower target. "/ today's" divides by the first row's time. The all-reduce (`gossip.mode = allreduce`, sim/ring_allreduce.hpp)
averages every peer exactly each step; a round waits for the slowest peer's
step and then 2(n-1) ring phases, each as long as its slowest transfer.

"""
TABLE_TAIL = """
![time to accuracy against bytes](wan-frontier.png)
"""


def write_plot(a, strategies, results):
    data = os.path.join(a.out, "frontier.tsv")
    curves = os.path.join(a.out, "curves.tsv")
    os.makedirs(a.out, exist_ok=True)
    # One line per strategy: bytes and time to the target, then to the second one (NaN: not reached).
    num = lambda v, scale=1: "NaN" if v is None else repr(v / scale)
    with open(data, "w") as f:
        for name, _, _ in strategies:
            r = results[name]
            f.write(f"{name}\t{num(r['b'], 1e6)}\t{num(r['t'])}\t{num(r['b2'], 1e6)}\t{num(r['t2'])}\n")
    if any(results[n]["t"] is not None or results[n]["t2"] is not None for n, _, _ in strategies):
        left = "plot " + ", ".join(
            f"'{data}' every ::{k}::{k} using 2:3 with points pointtype 7 pointsize 1.6 lc {k + 1} title '{name}', "
            f"'' every ::{k}::{k} using 4:5 with points pointtype 6 pointsize 1.6 lc {k + 1} notitle"
            for k, (name, _, _) in enumerate(strategies))
    else:
        left = ("set label 'no strategy reached the targets' at graph 0.5, graph 0.5 center; unset logscale; "
                "plot [0:1][0:1] 1/0 notitle")
    # Curves of the strategies run now (rows kept from the table have none), in their colours.
    ran = [(k, name) for k, (name, _, _) in enumerate(strategies) if results[name]["runs"]]
    with open(curves, "w") as f:
        for k, name in ran:
            f.write(f"# {name}\n")
            for t, b, acc in results[name]["runs"][0]["rows"]:
                if t > 0 and not math.isnan(acc):
                    f.write(f"{t}\t{b / 1e6}\t{100 * acc}\n")
            f.write("\n\n")
    plots = ", ".join(f"'{curves}' index {i} using 1:3 with lines lc {k + 1} title '{name}'"
                      for i, (k, name) in enumerate(ran))
    script = f"""
set terminal png size 1200,500 noenhanced
set output '{a.plot}'
set multiplot layout 1,2
set title 'time to accuracy against bytes sent until then: {100 * a.target:.0f} % filled, {100 * a.second:.0f} % open'
set xlabel 'bytes sent by all peers until then (MB)'; set ylabel 'virtual seconds'
set logscale xy; set grid; set key top left; set offsets graph 0.05, graph 0.05, graph 0.05, graph 0.05
{left}
unset label; unset logscale; set logscale x; set offsets 0,0,0,0
set title 'mean test accuracy over virtual time (seed {a.seeds.split(",")[0]})'
set xlabel 'virtual seconds'; set ylabel 'test accuracy (%)'; set yrange [60:92]; set key bottom right
plot {plots}, {100 * a.target} with lines dashtype 2 lc rgb 'gray' title '{100 * a.target:.0f} %'
unset multiplot
"""
    subprocess.run(["gnuplot"], input=script, text=True, check=True)


if __name__ == "__main__":
    sys.exit(main())
