#!/usr/bin/env python3
"""PyTorch CUDA eager baseline for bench/gpu_train.cpp (scripts/gpu_check.sh).

Reads gpu_train's JSON (--murmur-json): for each training case it builds the
same model from murmur's layer list (scripts/check_model_export.py's
torch_sequential: same layers, same shapes), trains it at the same batch on
random 1x28x28 inputs copied from pinned host memory every step, SGD lr 0.01
momentum 0.9, cross-entropy, for the same time window, and reports samples/s
two ways: no per-step synchronization (eager PyTorch at its fastest; the
baseline the goals use) and with loss.item() every step (as murmur's
train_step, which returns the loss). Then torch.mm at n = 4096 with TF32 off.

  torch_cuda_train.py --murmur-json gpu_train.json --out torch.json [--seconds S]

Exit codes: 0 done, 77 skipped (no torch or no CUDA device; said on stdout).
"""
import argparse
import json
import os
import sys
import time


def skip(what):
    print(f"skipped: {what}")
    sys.exit(77)


def sync(torch, dev):
    if dev.type == "cuda":
        torch.cuda.synchronize()


def train_case(torch, dev, case, seconds, sync_every_step):
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
    from check_model_export import torch_sequential

    torch.manual_seed(1)
    shape = tuple(case["input_shape"])
    model = torch_sequential(case["layers"], shape).to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()
    batch = int(case["batch"])
    g = torch.Generator().manual_seed(3)
    pin = (lambda t: t.pin_memory()) if dev.type == "cuda" else (lambda t: t)
    xs = [pin(torch.rand((batch,) + shape, generator=g)) for _ in range(4)]
    ys = [pin(torch.randint(0, int(case["classes"]), (batch,), generator=g)) for _ in range(4)]

    def step(i):
        x = xs[i % 4].to(dev, non_blocking=True)
        y = ys[i % 4].to(dev, non_blocking=True)
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss

    for i in range(5):
        step(i)
    sync(torch, dev)
    steps, t0 = 0, time.perf_counter()
    while True:
        loss = step(steps)
        if sync_every_step:
            loss.item()
        steps += 1
        if steps % 10 == 0 or sync_every_step:
            if steps >= 5 and time.perf_counter() - t0 >= seconds:
                break
    sync(torch, dev)
    secs = time.perf_counter() - t0
    return {"steps": steps, "seconds": secs, "samples_per_s": steps * batch / secs,
            "ms_per_step": 1e3 * secs / steps, "last_loss": float(loss.item())}


def mm_gflops(torch, dev, n, seconds):
    a = torch.randn(n, n, device=dev)
    b = torch.randn(n, n, device=dev)
    c = torch.empty(n, n, device=dev)
    torch.mm(a, b, out=c)
    sync(torch, dev)
    calls, t0 = 0, time.perf_counter()
    while calls < 3 or time.perf_counter() - t0 < seconds:
        torch.mm(a, b, out=c)
        calls += 1
        if calls % 4 == 0:
            sync(torch, dev)
    sync(torch, dev)
    return 2.0 * n ** 3 * calls / (time.perf_counter() - t0) / 1e9


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--murmur-json", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--device", default="cuda", help="cuda (default), or cpu to try this script without a GPU")
    args = p.parse_args()
    try:
        import torch
    except ImportError as e:
        skip(f"no PyTorch ({e})")
    if args.device == "cuda" and not torch.cuda.is_available():
        skip("no CUDA device for PyTorch")
    dev = torch.device(args.device)
    # FP32 products, no TF32, as murmur's CUDA backend (docs/gpu.md).
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    with open(args.murmur_json) as f:
        murmur = json.load(f)
    out = {"program": "torch_cuda_train", "torch": torch.__version__,
           "device_name": torch.cuda.get_device_name(0) if dev.type == "cuda" else "cpu",
           "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(), "train": []}
    for case in murmur.get("train", []):
        r = {"name": case["name"], "batch": case["batch"], "layers": case["layers"]}
        r["no_sync"] = train_case(torch, dev, case, args.seconds, False)
        r["sync_every_step"] = train_case(torch, dev, case, args.seconds, True)
        r["samples_per_s"] = r["no_sync"]["samples_per_s"]
        print(f"torch {case['name']:8s} batch {case['batch']:5d}: {r['no_sync']['samples_per_s']:9.0f} samples/s "
              f"(loss.item() every step: {r['sync_every_step']['samples_per_s']:.0f})", flush=True)
        out["train"].append(r)
    n = int(murmur.get("products", {}).get("n", 4096))
    out["mm_n"] = n
    out["mm_gflops"] = mm_gflops(torch, dev, n, args.seconds / 3)
    print(f"torch.mm {n}^3 (TF32 off): {out['mm_gflops']:.1f} GFLOP/s", flush=True)
    with open(args.out, "w") as f:
        json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
