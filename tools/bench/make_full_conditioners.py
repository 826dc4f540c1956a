"""Full-size random T5-XXL, CLIP-L, SigLIP so400m and USO projector, fast (never commit the output).

    python3 tools/bench/make_full_conditioners.py DIR [--models t5,clip,siglip,projector]

The same files, names, shapes and config.json as `tools/fixtures/conditioners.py --full-size DIR`
(whose layout definitions this reuses), but with values from random_pool.py's seeded pool instead of
one torch.randn per tensor: writing ~11 GB then takes minutes rather than most of an hour on a busy
2-core machine. Writes DIR/t5-xxl (BF16, encoder only), DIR/clip-vit-l14 (BF16), DIR/siglip (F32)
and DIR/USO/uso_flux_v1.0/projector.safetensors.
"""
import argparse
import os
import sys

import torch

# Appended, not prepended: tools/fixtures/tokenizers.py must not shadow the tokenizers package.
sys.path.append(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures"))
import conditioners  # noqa: E402
from random_pool import write_safetensors  # noqa: E402

DTYPES = {torch.bfloat16: "BF16", torch.float32: "F32"}


def pooled_writer(path, entries, seed):
    """conditioners.write_streaming_safetensors's contract, with the same value scales."""
    def scale(shape, kind):
        return None if kind == "ones" else (shape[-1] ** -0.5 if kind == "linear" else 0.1)
    write_safetensors(path, [(name, shape, DTYPES[dtype], scale(shape, kind)) for name, shape, dtype, kind in entries], seed)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir")
    parser.add_argument("--models", default="t5,clip,siglip,projector")
    args = parser.parse_args()
    conditioners.write_streaming_safetensors = pooled_writer
    conditioners.full_size(args.out_dir, args.models.split(","), torch.bfloat16)


if __name__ == "__main__":
    main()
