#!/usr/bin/python3
"""Runs a PyTorch baseline of ../shared/bench with torch.set_flush_denormal(True).

murmur's optimizers flush subnormal state to zero (tensor/optimizer.cpp);
PyTorch keeps subnormals unless told otherwise, and pays microcode assists
for them once a momentum buffer decays into them (on Fashion-MNIST after
about one epoch). This runs the same baseline with PyTorch's own switch, so
a benchmark can show both ratios:

  build/train_throughput --torch "bench/torch_flush_denormal.py ../shared/bench/torch_mlp.py"

Usage: torch_flush_denormal.py SCRIPT [the script's arguments]
"""
import os
import runpy
import sys


def main():
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    script = os.path.abspath(sys.argv[1])
    sys.argv = sys.argv[1:]
    sys.path.insert(0, os.path.dirname(script))
    import common  # the baseline's helpers; torch is imported by setup_threads, after the thread settings

    setup = common.setup_threads

    def setup_then_flush(n, blas_n=None):
        torch = setup(n, blas_n)
        if not torch.set_flush_denormal(True):
            raise SystemExit("torch.set_flush_denormal(True): not supported on this CPU")
        return torch

    common.setup_threads = setup_then_flush
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
