#!/usr/bin/python3
"""Checks murmur's exported models against PyTorch (Debian's python3-torch)
and ONNX's checker (python3-onnx). Used by CTest (tests/model_io/export_roundtrip.sh).

  check_model_export.py torch MODEL.safetensors DIR   # DIR: images.npy, logits.npy (tests/model_io/tools/model_logits)
  check_model_export.py onnx MODEL.onnx DIR

torch: reads the safetensors file with numpy and json only (Debian has no
safetensors package), builds the equivalent torch.nn.Sequential from the
layer list in its metadata, loads the tensors as its state dict (strict: every
name and shape must match) and compares its logits with murmur's.
onnx: onnx.checker.check_model (full check), the input/output names, then
runs the graph with PyTorch operators (onnx 1.12 has no reference evaluator)
and compares the logits with murmur's.
Exit codes: 0 pass, 1 fail, 77 skipped (a package missing; said on stdout).
"""
import json
import struct
import sys

TOLERANCE = 1e-4


def skip(what):
    print(f"skipped: {what}")
    sys.exit(77)


def fail(what):
    print(f"FAILED: {what}")
    sys.exit(1)


def read_safetensors(path):
    import numpy as np
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    meta = header.pop("__metadata__", {})
    data = blob[8 + n:]
    tensors = {}
    for name, e in header.items():
        if e["dtype"] != "F32":
            fail(f"{path}: tensor {name} is {e['dtype']}")
        b, end = e["data_offsets"]
        tensors[name] = np.frombuffer(data[b:end], dtype="<f4").reshape(e["shape"])
    return meta, tensors


def split_top(text):
    """Items of a layer list, split at commas outside brackets."""
    items, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += ch == "["
        depth -= ch == "]"
        if ch == "," and depth == 0:
            items.append(text[start:i].strip())
            start = i + 1
    items.append(text[start:].strip())
    return items


def torch_modules(layers, shape):
    """The modules a murmur layer list stands for (tensor/sequential.hpp), and the output shape."""
    import torch.nn as nn

    class Residual(nn.Module):  # murmur's res[...]: y = x + body(x), as scripts/gen_torch_reference.py
        def __init__(self, body):
            super().__init__()
            self.body = body

        def forward(self, x):
            return x + self.body(x)

    mods, shape = [], list(shape)
    for item in split_top(layers):
        if item.startswith("res["):
            body, _ = torch_modules(item[4:-1], shape)
            mods.append(Residual(nn.Sequential(*body)))
            continue
        kind, *a = item.split(":")
        if kind == "dropout":
            mods.append(nn.Dropout(float(a[0])))
            continue
        a = [int(x) for x in a]
        if kind == "linear":
            mods.append(nn.Linear(shape[0], a[0]))
            shape = [a[0]]
        elif kind == "conv2d":
            k, s, p = a[1], a[2] if len(a) > 2 else 1, a[3] if len(a) > 3 else 0
            mods.append(nn.Conv2d(shape[0], a[0], k, stride=s, padding=p))
            shape = [a[0], (shape[1] + 2 * p - k) // s + 1, (shape[2] + 2 * p - k) // s + 1]
        elif kind == "maxpool2d":
            mods.append(nn.MaxPool2d(a[0]))
            shape = [shape[0], shape[1] // a[0], shape[2] // a[0]]
        elif kind == "groupnorm":
            mods.append(nn.GroupNorm(a[0], shape[0], eps=1e-5))
        elif kind == "gap":
            mods.append(nn.AdaptiveAvgPool2d(1))
            shape = [shape[0], 1, 1]
        elif kind == "relu":
            mods.append(nn.ReLU())
        elif kind == "sigmoid":
            mods.append(nn.Sigmoid())
        elif kind == "tanh":
            mods.append(nn.Tanh())
        elif kind == "flatten":
            mods.append(nn.Flatten())
            n = 1
            for d in shape:
                n *= d
            shape = [n]
        else:
            fail(f"no PyTorch module for layer kind '{kind}' in this script")
    return mods, shape


def torch_sequential(layers, input_shape):
    import torch.nn as nn
    return nn.Sequential(*torch_modules(layers, input_shape)[0])


def compare(name, got, want, images):
    import numpy as np
    if got.shape != want.shape:
        fail(f"{name}: logits {got.shape}, murmur's {want.shape}")
    diff = float(np.max(np.abs(got - want)))
    print(f"{name}: max |logit difference| = {diff:.3g} over {images} images (tolerance {TOLERANCE:g})")
    if not diff <= TOLERANCE:
        fail(f"{name}: logits differ by {diff:g} > {TOLERANCE:g}")


def check_torch(model_path, d):
    try:
        import numpy as np
        import torch
    except ImportError:
        skip("no python3-torch (apt-get install python3-torch): the PyTorch round trip did not run")
    meta, tensors = read_safetensors(model_path)
    shape = [int(x) for x in meta["input_shape"].split(",")]
    net = torch_sequential(meta["layers"], shape)
    state = {k: torch.from_numpy(v.copy()) for k, v in tensors.items()}
    net.load_state_dict(state, strict=True)  # every name and shape as PyTorch's own
    net.eval()  # dropout off, as murmur evaluates
    images, logits = np.load(f"{d}/images.npy"), np.load(f"{d}/logits.npy")
    with torch.no_grad():
        got = net(torch.from_numpy(images)).numpy()
    compare(f"PyTorch nn.Sequential from {model_path}", got, logits, len(images))


def run_onnx_with_torch(model, x):
    import onnx
    import torch
    import torch.nn.functional as F
    from onnx import numpy_helper
    values = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in model.graph.initializer}
    values[model.graph.input[0].name] = torch.from_numpy(x)
    for n in model.graph.node:
        attrs = {a.name: (list(a.ints) if a.ints else a.f if a.type == onnx.AttributeProto.FLOAT else a.i)
                 for a in n.attribute}
        ins = [values[i] for i in n.input]
        if n.op_type == "Gemm":
            assert attrs.get("transB") == 1 and attrs.get("transA", 0) == 0
            y = ins[0] @ ins[1].T + ins[2]
        elif n.op_type == "Conv":
            p = attrs.get("pads", [0, 0, 0, 0])
            assert p[0] == p[2] and p[1] == p[3]
            y = F.conv2d(ins[0], ins[1], ins[2], stride=attrs.get("strides", [1, 1]), padding=p[:2])
        elif n.op_type == "MaxPool":
            y = F.max_pool2d(ins[0], attrs["kernel_shape"], stride=attrs["strides"])
        elif n.op_type == "Relu":
            y = torch.relu(ins[0])
        elif n.op_type == "Sigmoid":
            y = torch.sigmoid(ins[0])
        elif n.op_type == "Tanh":
            y = torch.tanh(ins[0])
        elif n.op_type == "Flatten":
            y = torch.flatten(ins[0], attrs.get("axis", 1))
        elif n.op_type == "Identity":
            y = ins[0]
        elif n.op_type == "GlobalAveragePool":
            y = ins[0].mean(dim=(2, 3), keepdim=True)
        elif n.op_type == "Reshape":  # 0 copies the input's dimension, -1 is inferred (ONNX's rules)
            dims = [ins[0].shape[i] if d == 0 else d for i, d in enumerate(ins[1].tolist())]
            y = ins[0].reshape(dims)
        elif n.op_type == "InstanceNormalization":
            x = ins[0]
            mean = x.mean(dim=tuple(range(2, x.dim())), keepdim=True)
            var = ((x - mean) ** 2).mean(dim=tuple(range(2, x.dim())), keepdim=True)
            shape = [1, -1] + [1] * (x.dim() - 2)
            y = (x - mean) / torch.sqrt(var + attrs.get("epsilon", 1e-5)) * ins[1].reshape(shape) + ins[2].reshape(shape)
        elif n.op_type == "Mul":
            y = ins[0] * ins[1]
        elif n.op_type == "Add":
            y = ins[0] + ins[1]
        else:
            fail(f"ONNX op {n.op_type} not known to this script")
        values[n.output[0]] = y
    return values[model.graph.output[0].name]


def check_onnx(model_path, d):
    try:
        import onnx
    except ImportError:
        skip("no python3-onnx (apt-get install python3-onnx): the ONNX check did not run")
    model = onnx.load(model_path)
    onnx.checker.check_model(model, full_check=True)
    ins = [i.name for i in model.graph.input]
    outs = [o.name for o in model.graph.output]
    if ins != ["input"] or outs != ["logits"]:
        fail(f"{model_path}: inputs {ins}, outputs {outs}; expected ['input'], ['logits']")
    if model.graph.input[0].type.tensor_type.shape.dim[0].dim_param != "batch":
        fail(f"{model_path}: the batch dimension is not symbolic")
    print(f"onnx.checker: {model_path} passes (opset {model.opset_import[0].version}, {len(model.graph.node)} nodes)")
    try:
        import numpy as np
        import torch
    except ImportError:
        skip("no python3-torch: the ONNX graph passed the checker but its logits were not compared")
    images, logits = np.load(f"{d}/images.npy"), np.load(f"{d}/logits.npy")
    with torch.no_grad():
        got = run_onnx_with_torch(model, images).numpy()
    compare(f"ONNX graph of {model_path} run with PyTorch operators", got, logits, len(images))


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] not in ("torch", "onnx"):
        print(__doc__)
        sys.exit(2)
    (check_torch if sys.argv[1] == "torch" else check_onnx)(sys.argv[2], sys.argv[3])
