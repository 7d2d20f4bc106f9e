#!/usr/bin/env python3
"""The report of scripts/gpu_check.sh: reads what its steps left in OUTDIR
(steps.tsv, gpu_train.json, torch_cuda.json, sim_gpu_summary.json,
sim_cpu_summary.json, MANIFEST) and writes OUTDIR/report.txt and
OUTDIR/report.json: every figure with the device it ran on, and each goal of
issue 13 as measured / goal / met. A figure that was not measured says so
(never a number that was not measured).

  gpu_report.py OUTDIR
"""
import json
import os
import sys

# (name, murmur case, batch, goal ratio of murmur's samples/s to PyTorch's)
TRAIN_GOALS = [("mlp", 64, 1.5), ("mlp", 1024, 1.5), ("cnn", 256, 1.0), ("resnet9", 256, 1.0)]


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def main():
    if len(sys.argv) != 2:
        print("usage: gpu_report.py OUTDIR", file=sys.stderr)
        return 2
    d = sys.argv[1]
    steps = []
    try:
        with open(os.path.join(d, "steps.tsv")) as f:
            for line in f:
                name, rc, secs, verdict = line.rstrip("\n").split("\t")
                steps.append({"step": name, "exit": rc, "seconds": float(secs), "verdict": verdict})
    except OSError:
        pass
    manifest = ""
    try:
        with open(os.path.join(d, "MANIFEST")) as f:
            manifest = f.readline().strip()
    except OSError:
        pass
    mm = load(os.path.join(d, "gpu_train.json")) or {}
    th = load(os.path.join(d, "torch_cuda.json")) or {}
    sim_gpu = load(os.path.join(d, "sim_gpu_summary.json"))
    sim_cpu = load(os.path.join(d, "sim_cpu_summary.json"))
    device = mm.get("device_name") or th.get("device_name") or "no CUDA device"
    goals = []

    def goal(what, measured, target, higher_is_better=True, detail=""):
        met = None if measured is None else (measured >= target if higher_is_better else measured <= target)
        goals.append({"goal": what, "measured": measured, "target": target,
                      "comparison": ">=" if higher_is_better else "<=", "met": met, "device": device,
                      "detail": detail})

    mtrain = {(c["name"], c["batch"]): c for c in mm.get("train", [])}
    ttrain = {(c["name"], c["batch"]): c for c in th.get("train", [])}
    for name, batch, target in TRAIN_GOALS:
        m, t = mtrain.get((name, batch)), ttrain.get((name, batch))
        ratio = m["samples_per_s"] / t["samples_per_s"] if m and t else None
        detail = "not measured"
        if m and t:
            detail = (f"murmur {m['samples_per_s']:.0f} samples/s, PyTorch eager {t['samples_per_s']:.0f} "
                      f"(with loss.item() every step as murmur: {t['sync_every_step']['samples_per_s']:.0f})")
        goal(f"{name} training step, batch {batch}: murmur / PyTorch samples/s", ratio, target, detail=detail)
    prod = mm.get("products", {})
    lvb = prod.get("linear_vs_bare")
    goal(f"Linear products at {prod.get('n', 4096)}^2: murmur / bare cublasSgemm GFLOP/s", lvb, 0.9,
         detail=(f"murmur {prod['linear_gflops']:.0f} GFLOP/s, bare cuBLAS {prod['bare_cublas_gflops']:.0f}, "
                 f"torch.mm {th.get('mm_gflops', float('nan')):.0f}") if lvb else "not measured")
    for ch in prod.get("freivalds", []):
        goal(f"Freivalds check ({ch['rounds']} round{'s' if ch['rounds'] > 1 else ''}) / the {prod.get('n')}^3 product it checks",
             ch["check_vs_product"], 0.02, higher_is_better=False,
             detail=f"check {ch['check_ms']:.3f} ms, product {ch['product_ms']:.3f} ms, verdict ok={ch['ok']}")
    if not prod.get("freivalds"):
        goal("Freivalds check / the 4096^3 product it checks", None, 0.02, higher_is_better=False, detail="not measured")
    batch = int(os.environ.get("GPU_SIM_BATCH", "64"))

    def wall_samples_per_s(s):  # summary.json's samples_per_s is per virtual second
        return s["steps"] * s["peers"] * batch / s["wall_time_s"] if s.get("wall_time_s") else None

    if sim_gpu and sim_cpu:
        g_sps, c_sps = wall_samples_per_s(sim_gpu), wall_samples_per_s(sim_cpu)
        ratio = g_sps / c_sps if g_sps and c_sps else None
        detail = (f"GPU {g_sps:.0f} samples/s ({sim_gpu['wall_time_s']:.1f} s wall), CPU (the bundle's reference, "
                  f"its machine) {c_sps:.0f} ({sim_cpu['wall_time_s']:.1f} s); gossip bytes GPU {sim_gpu['bytes_sent_total']} vs CPU "
                  f"{sim_cpu['bytes_sent_total']} ({sim_gpu['bytes_sent_total'] / max(1, sim_cpu['bytes_sent_total']):.3f}x); "
                  f"final accuracy GPU {sim_gpu['final_test_accuracy']:.4f}, CPU {sim_cpu['final_test_accuracy']:.4f}")
        goal("8 simulated peers on one GPU: aggregate samples/s / the same simulation on the CPU", ratio, 5.0, detail=detail)
    else:
        goal("8 simulated peers on one GPU: aggregate samples/s / the same simulation on the CPU", None, 5.0,
             detail="not measured" + ("" if sim_cpu else " (the bundle has no CPU reference: gpu_bundle.sh --cpu-reference)"))

    report = {"device": device, "bundle": manifest, "torch": th.get("torch"), "steps": steps, "goals": goals,
              "gpu_train": mm or None, "torch_cuda": th or None}
    with open(os.path.join(d, "report.json"), "w") as f:
        json.dump(report, f, indent=2)
    lines = [f"murmur GPU check on: {device}", f"bundle: {manifest}", "", "steps:"]
    for s in steps:
        lines.append(f"  {s['step']:<11} {s['verdict']:<24} {s['seconds']:7.1f} s")
    lines += ["", "goals (measured in this run; ratios, so machines compare):"]
    for g in goals:
        if g["measured"] is None:
            extra = g["detail"].removeprefix("not measured").strip()
            lines.append(f"  [ -- ] {g['goal']}: not measured{' ' + extra if extra else ''}")
        else:
            lines.append(f"  [{'met ' if g['met'] else 'MISS'}] {g['goal']}: {g['measured']:.3f} "
                         f"(goal {g['comparison']} {g['target']}); {g['detail']}")
    text = "\n".join(lines) + "\n"
    with open(os.path.join(d, "report.txt"), "w") as f:
        f.write(text)
    print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
