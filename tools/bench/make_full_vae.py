#!/usr/bin/env python3
"""Writes a full-size FLUX autoencoder with random weights (real BFL key names and shapes, F32,
83,819,683 parameters, ~335 MB) for the benchmark. Never commit its output.

    python3 tools/bench/make_full_vae.py /path/to/ae.safetensors [--seed 0]

The modules are the independent PyTorch implementation in tools/fixtures/autoencoder.py, configured
as FLUX.1's autoencoder (spec §6: ch 128, ch_mult [1, 2, 4, 4], 2 res blocks, z 16).
"""
import argparse
import os
import sys

import torch
from safetensors.torch import save_file

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures"))
from autoencoder import AutoEncoder  # noqa: E402

FLUX_PARAMETERS = 83_819_683  # encoder 34,274,208 + decoder 49,545,475 (spec §9.1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", help="output .safetensors file")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    with torch.no_grad():
        model = AutoEncoder(ch=128, mult=[1, 2, 4, 4], blocks=2, z=16)
        weights = {k: v.contiguous() for k, v in model.state_dict().items()}
    count = sum(v.numel() for v in weights.values())
    if count != FLUX_PARAMETERS:
        sys.exit(f"built {count} parameters, expected {FLUX_PARAMETERS}")
    save_file(weights, args.path)
    print(f"wrote {args.path}: {len(weights)} tensors, {count} parameters, {os.path.getsize(args.path) / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
