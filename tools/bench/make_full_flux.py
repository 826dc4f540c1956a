"""Full-size random FLUX.1-dev DiT + USO LoRA, for benchmarks (never commit the output).

    python3 tools/bench/make_full_flux.py OUT_DIR [--double-blocks 19] [--single-blocks 38] [--lora-rank 128]

writes OUT_DIR/flux1-dev.safetensors (BF16, the Black Forest Labs key names and shapes of spec §3.4,
~23.8 GB at full depth) and OUT_DIR/dit_lora.safetensors (BF16, rank 128, the layout of spec §4.1,
~478 MB). Fewer blocks give a full-width checkpoint of smaller depth (e.g. 1 + 1 for per-block
timings on a small disk). Tensors are generated and written one at a time, so memory stays at the
size of the largest tensor (linear1, 132 MB) whatever the file size. Values are N(0, 1/in) for
weights (so activations keep their scale through the blocks), 0.1 of that for LoRA up weights (so the
LoRA nudges rather than dominates), N(0, 0.02²) for biases, 1 for norm scales, drawn from a seeded
pool (random_pool.py: minutes instead of the better part of an hour), so the files are reproducible.
"""

import argparse
import os

from random_pool import write_safetensors

HIDDEN, MLP, HEAD_DIM = 3072, 12288, 128
IN_CH, VEC, CONTEXT, TIME = 64, 768, 4096, 256


def dit_shapes(double_blocks, single_blocks):
    shapes = {}

    def lin(name, out_f, in_f):
        shapes[name + ".weight"] = [out_f, in_f]
        shapes[name + ".bias"] = [out_f]

    lin("img_in", HIDDEN, IN_CH)
    for name, in_f in (("time_in", TIME), ("vector_in", VEC), ("guidance_in", TIME)):
        lin(name + ".in_layer", HIDDEN, in_f)
        lin(name + ".out_layer", HIDDEN, HIDDEN)
    lin("txt_in", HIDDEN, CONTEXT)
    for i in range(double_blocks):
        for s in ("img", "txt"):
            p = f"double_blocks.{i}.{s}"
            lin(p + "_mod.lin", 6 * HIDDEN, HIDDEN)
            lin(p + "_attn.qkv", 3 * HIDDEN, HIDDEN)
            shapes[p + "_attn.norm.query_norm.scale"] = [HEAD_DIM]
            shapes[p + "_attn.norm.key_norm.scale"] = [HEAD_DIM]
            lin(p + "_attn.proj", HIDDEN, HIDDEN)
            lin(p + "_mlp.0", MLP, HIDDEN)
            lin(p + "_mlp.2", HIDDEN, MLP)
    for i in range(single_blocks):
        p = f"single_blocks.{i}"
        lin(p + ".linear1", 3 * HIDDEN + MLP, HIDDEN)
        lin(p + ".linear2", HIDDEN, HIDDEN + MLP)
        shapes[p + ".norm.query_norm.scale"] = [HEAD_DIM]
        shapes[p + ".norm.key_norm.scale"] = [HEAD_DIM]
        lin(p + ".modulation.lin", 3 * HIDDEN, HIDDEN)
    lin("final_layer.linear", IN_CH, HIDDEN)
    lin("final_layer.adaLN_modulation.1", 2 * HIDDEN, HIDDEN)
    return shapes


def lora_shapes(double_blocks, single_blocks, rank):
    shapes = {}

    def pair(name, out_f, in_f):
        shapes[name + ".down.weight"] = [rank, in_f]
        shapes[name + ".up.weight"] = [out_f, rank]

    for i in range(double_blocks):
        p = f"double_blocks.{i}.processor"
        pair(p + ".qkv_lora1", 3 * HIDDEN, HIDDEN)
        pair(p + ".proj_lora1", HIDDEN, HIDDEN)
        pair(p + ".qkv_lora2", 3 * HIDDEN, HIDDEN)
        pair(p + ".proj_lora2", HIDDEN, HIDDEN)
    for i in range(single_blocks):
        p = f"single_blocks.{i}.processor"
        pair(p + ".qkv_lora", 3 * HIDDEN, HIDDEN)
        pair(p + ".proj_lora", HIDDEN, HIDDEN + MLP)
    return shapes


def entries(shapes):
    """(name, shape, dtype, standard deviation or None for ones) in file order."""
    def scale(name, shape):
        if name.endswith(".scale"):
            return None
        if name.endswith(".bias"):
            return 0.02
        if name.endswith("up.weight"):
            return 0.1 / shape[1] ** 0.5
        return shape[1] ** -0.5
    return [(name, shapes[name], "BF16", scale(name, shapes[name])) for name in sorted(shapes)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out_dir")
    parser.add_argument("--double-blocks", type=int, default=19)
    parser.add_argument("--single-blocks", type=int, default=38)
    parser.add_argument("--lora-rank", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    write_safetensors(os.path.join(args.out_dir, "flux1-dev.safetensors"),
                      entries(dit_shapes(args.double_blocks, args.single_blocks)), seed=args.seed)
    write_safetensors(os.path.join(args.out_dir, "dit_lora.safetensors"),
                      entries(lora_shapes(args.double_blocks, args.single_blocks, args.lora_rank)), seed=args.seed + 1)


if __name__ == "__main__":
    main()
