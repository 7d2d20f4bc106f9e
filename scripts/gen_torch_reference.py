#!/usr/bin/python3
"""Writes tests/fixtures/torch_reference/: PyTorch's loss, gradients and
optimizer steps for a few small models, which tests/tensor/test_torch_reference.cpp
replays through murmur's layers and optimizers.

Regenerate (needs Debian's python3-torch; the fixture is committed, so only
when the cases below change):

    /usr/bin/python3 scripts/gen_torch_reference.py

Output is deterministic (fixed seeds, single thread).

Format, per case NAME:
  NAME.txt         lines "key value..." (spec, input_shape, classes, batch,
                   labels, the optimizers' settings, losses) and one line
                   "array KEY FILE COUNT" per array
  NAME.KEY.f32.gz  gzip-compressed raw little-endian float32, flat

Parameters are flat in murmur's layout: layer by layer, weight (PyTorch's
layout, [out, in] or [out, in, k, k]; GroupNorm's [C]) then bias; a
res[...] block's body layers in order, as model.parameters() lists them.
A case with "mode eval" runs with model.eval() (dropout off) and murmur
replays it with set_training(false). They start as PyTorch's
default init rounded to multiples of 2^-12 (exact in float32, and gzip
shrinks them), so the MLP fits the size budget.

For each optimizer, starting from params0: for step k = 1..steps, forward
the same batch, record loss_OPT_k and OPT.grads_k, step, record
OPT.params_k. Step 1's gradients are the same for both optimizers and are
stored once, as sgd.grads1.
"""
import gzip
import os

import numpy as np
import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures",
                   "torch_reference")
nn = torch.nn


class Residual(nn.Module):
    """murmur's res[...]: y = x + body(x)."""

    def __init__(self, body):
        super().__init__()
        self.body = body

    def forward(self, x):
        return x + self.body(x)


def split_top(spec):
    """Splits at commas outside brackets."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(spec):
        depth += ch == "["
        depth -= ch == "]"
        if ch == "," and depth == 0:
            parts.append(spec[start:i])
            start = i + 1
    parts.append(spec[start:])
    return parts


def build(spec, input_shape):
    """torch.nn.Sequential for murmur's comma-separated layer list."""
    return build_list(spec, list(input_shape))[0]


def build_list(spec, shape):
    layers = []
    for item in split_top(spec):
        if item.startswith("res["):
            body, out = build_list(item[4:-1], shape)
            assert out == shape, item
            layers.append(Residual(body))
            continue
        kind, *args = item.split(":")
        if kind == "dropout":
            layers.append(nn.Dropout(float(args[0])))
            continue
        args = [int(a) for a in args]
        if kind == "groupnorm":
            layers.append(nn.GroupNorm(args[0], shape[0], eps=1e-5))
        elif kind == "gap":
            layers.append(nn.AdaptiveAvgPool2d(1))
            shape = [shape[0], 1, 1]
        elif kind == "linear":
            layers.append(nn.Linear(shape[0], args[0]))
            shape = [args[0]]
        elif kind == "conv2d":
            out, k = args[0], args[1]
            s = args[2] if len(args) > 2 else 1
            p = args[3] if len(args) > 3 else 0
            layers.append(nn.Conv2d(shape[0], out, k, stride=s, padding=p))
            shape = [out, (shape[1] + 2 * p - k) // s + 1, (shape[2] + 2 * p - k) // s + 1]
        elif kind == "maxpool2d":
            layers.append(nn.MaxPool2d(args[0]))
            shape = [shape[0], shape[1] // args[0], shape[2] // args[0]]
        elif kind == "flatten":
            layers.append(nn.Flatten())
            shape = [int(np.prod(shape))]
        else:
            layers.append({"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}[kind]())
    return nn.Sequential(*layers), shape


MLP_SPEC = "flatten,linear:256,relu,linear:128,relu,linear:10"  # murmur's "mlp" preset

CASES = [
    # name, spec, input shape, batch, sgd (lr, momentum, wd, steps), adam (lr, b1, b2, eps, wd, steps)
    # Adam's eps is 1e-6 here, not 1e-8: a few first-layer gradients are
    # ~1e-9, pure cancellation noise, and Adam's first step moves those by
    # lr * g / (|g| + eps), magnifying the noise into visible differences.
    ("mlp", "mlp", (1, 28, 28), 8, (0.1, 0.9, 0.0, 1), (1e-3, 0.9, 0.999, 1e-6, 0.0, 1)),
    ("cnn", "conv2d:4:3,relu,maxpool2d:2,flatten,linear:10", (1, 8, 8), 8,
     (0.1, 0.9, 1e-3, 2), (1e-2, 0.9, 0.999, 1e-8, 1e-3, 2)),
    ("mix", "conv2d:4:3:1:1,tanh,maxpool2d:2,conv2d:6:3:2:1,relu,flatten,linear:16,sigmoid,linear:10",
     (2, 9, 9), 6, (0.05, 0.5, 0.0, 2), (1e-2, 0.8, 0.99, 1e-6, 0.0, 2)),
    # A narrow ResNet: groupnorm (affine parameters train), a residual block
    # with a nested one, global average pooling. Adam's eps is 1e-3: behind
    # the normalisations some weight gradients are ~1e-7 and Adam's first
    # step would magnify their last-bit differences (see above).
    ("resnet", "conv2d:4:3:1:1,groupnorm:2,relu,res[conv2d:4:3:1:1,groupnorm:2,relu,"
     "res[conv2d:4:3:1:1,groupnorm:2,tanh]],maxpool2d:2,conv2d:6:3:1:1,groupnorm:3,relu,gap,flatten,linear:10",
     (2, 8, 8), 6, (0.1, 0.9, 1e-3, 2), (1e-2, 0.9, 0.999, 1e-3, 0.0, 2)),
    # Dropout in evaluation mode is the identity (train mode: a statistical
    # test in test_layers.cpp; torch's generator is not murmur's).
    ("dropout_eval", "flatten,linear:16,dropout:0.5,relu,linear:12,dropout:0.3,linear:10,groupnorm:2",
     (1, 5, 5), 6, (0.1, 0.9, 0.0, 2), (1e-2, 0.9, 0.999, 1e-6, 0.0, 1)),
]
EVAL_CASES = {"dropout_eval"}


def flat_params(model):
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()]).numpy().copy()


def flat_grads(model):
    return torch.cat([p.grad.detach().reshape(-1) for p in model.parameters()]).numpy().copy()


def set_params(model, flat):
    at = 0
    with torch.no_grad():
        for p in model.parameters():
            n = p.numel()
            p.copy_(torch.from_numpy(flat[at:at + n]).reshape(p.shape))
            at += n


def make_input(name, shape, batch, gen):
    if name == "mlp":
        # Image-like: pixels k/255, zero outside the central 16x16 (as the
        # background of Fashion-MNIST), so many first-layer gradients are
        # exactly zero and compress well.
        x = torch.zeros(batch, *shape)
        centre = torch.randint(0, 256, (batch, shape[0], 16, 16), generator=gen).float() / 255
        centre *= (torch.rand(batch, shape[0], 16, 16, generator=gen) < 0.6).float()
        x[:, :, 6:22, 6:22] = centre
        return x
    return torch.rand(batch, *shape, generator=gen) * 2 - 1


def write_array(files, lines, name, key, arr):
    arr = np.ascontiguousarray(arr, dtype="<f4").reshape(-1)
    fname = f"{name}.{key}.f32.gz"
    # mtime=0 keeps the bytes reproducible.
    with open(os.path.join(OUT, fname), "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb",
                                                                  mtime=0, compresslevel=9) as f:
        f.write(arr.tobytes())
    files.append(fname)
    lines.append(f"array {key} {fname} {arr.size}")


def run_case(name, spec, shape, batch, sgd, adam):
    torch.manual_seed(1234)
    gen = torch.Generator().manual_seed(99)
    full = MLP_SPEC if spec == "mlp" else spec
    model = build(full, shape)
    if name in EVAL_CASES:
        model.eval()
    p0 = np.round(flat_params(model) * 4096) / 4096
    p0 = p0.astype(np.float32)
    x = make_input(name, shape, batch, gen)
    y = torch.randint(0, 10, (batch,), generator=gen)

    lines = [f"# written by scripts/gen_torch_reference.py (torch {torch.__version__})",
             f"spec {spec}", "input_shape " + " ".join(map(str, shape)), "classes 10",
             f"batch {batch}", "labels " + " ".join(str(int(v)) for v in y),
             "sgd lr {} momentum {} weight_decay {} steps {}".format(*sgd),
             "adam lr {} beta1 {} beta2 {} eps {} weight_decay {} steps {}".format(*adam)]
    if name in EVAL_CASES:
        lines.append("mode eval")
    files = []
    write_array(files, lines, name, "params0", p0)
    write_array(files, lines, name, "input", x.numpy())

    for opt_name in ("sgd", "adam"):
        set_params(model, p0)
        if opt_name == "sgd":
            lr, mom, wd, steps = sgd
            opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=mom, weight_decay=wd)
        else:
            lr, b1, b2, eps, wd, steps = adam
            opt = torch.optim.Adam(model.parameters(), lr=lr, betas=(b1, b2), eps=eps, weight_decay=wd)
        for k in range(1, steps + 1):
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(x), y)
            loss.backward()
            lines.append(f"loss_{opt_name}_{k} {loss.item():.9g}")
            if not (opt_name == "adam" and k == 1):
                write_array(files, lines, name, f"{opt_name}.grads{k}", flat_grads(model))
            opt.step()
            write_array(files, lines, name, f"{opt_name}.params{k}", flat_params(model))

    with open(os.path.join(OUT, f"{name}.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    size = sum(os.path.getsize(os.path.join(OUT, fn)) for fn in files)
    print(f"{name}: {sum(p.numel() for p in model.parameters())} params, {size} bytes")


def main():
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    for case in CASES:
        run_case(*case)


if __name__ == "__main__":
    main()
