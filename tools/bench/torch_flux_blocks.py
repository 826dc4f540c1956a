"""PyTorch's side of `uso-bench flux --torch`: one FLUX.1 double-stream block and one single-stream
block at full width (hidden 3072, 24 heads, MLP 12288) in bf16 (or --dtype f32) on the CPU, random weights, timed at
the token counts uso's step runs, so the two can be compared in the same run.

    python3 tools/bench/torch_flux_blocks.py --text 704 --image 2048 [--repeats 3] [--threads 2]

prints one JSON line: {"double": seconds, "single": seconds, "torch": version, "threads": n}, the
median of the repeats after one warm-up each. The blocks follow the published FLUX architecture
(modulation, LayerNorm, fused qkv, RMS q/k norm, RoPE, SDPA, GELU-tanh MLP, gated residuals); the
USO LoRA branches are left out, as are the embedders (under 1% of a step).
"""

import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

HIDDEN, HEADS, MLP = 3072, 24, 12288
HEAD_DIM = HIDDEN // HEADS


def rope(x, cos, sin):
    # x: [B, H, L, D], rotate interleaved pairs
    pairs = x.float().reshape(*x.shape[:-1], -1, 2)
    a, b = pairs[..., 0], pairs[..., 1]
    out = torch.stack((a * cos - b * sin, a * sin + b * cos), dim=-1)
    return out.reshape(x.shape).type_as(x)


def heads(qkv, norm_q, norm_k, length):
    q, k, v = qkv.view(1, length, 3, HEADS, HEAD_DIM).permute(2, 0, 3, 1, 4)
    return norm_q(q), norm_k(k), v


class RMS(nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(HEAD_DIM))

    def forward(self, x):
        dtype = x.dtype
        x = x.float()
        return (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6)).to(dtype) * self.scale


def attend(q, k, v, cos, sin):
    out = F.scaled_dot_product_attention(rope(q, cos, sin), rope(k, cos, sin), v)
    return out.transpose(1, 2).reshape(1, q.shape[2], HIDDEN)


def modulate(x, shift, scale):
    return (1 + scale) * F.layer_norm(x, (HIDDEN,), eps=1e-6) + shift


class Stream(nn.Module):
    def __init__(self):
        super().__init__()
        self.mod = nn.Linear(HIDDEN, 6 * HIDDEN)
        self.qkv = nn.Linear(HIDDEN, 3 * HIDDEN)
        self.norm_q, self.norm_k = RMS(), RMS()
        self.proj = nn.Linear(HIDDEN, HIDDEN)
        self.mlp = nn.Sequential(nn.Linear(HIDDEN, MLP), nn.GELU(approximate="tanh"), nn.Linear(MLP, HIDDEN))


class DoubleBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.img, self.txt = Stream(), Stream()

    def forward(self, img, txt, vec, cos, sin):
        mods = [s.mod(F.silu(vec)).chunk(6, dim=-1) for s in (self.img, self.txt)]
        parts = []
        for stream, x, m in ((self.img, img, mods[0]), (self.txt, txt, mods[1])):
            parts.append(heads(stream.qkv(modulate(x, m[0], m[1])), stream.norm_q, stream.norm_k, x.shape[1]))
        q = torch.cat((parts[1][0], parts[0][0]), dim=2)
        k = torch.cat((parts[1][1], parts[0][1]), dim=2)
        v = torch.cat((parts[1][2], parts[0][2]), dim=2)
        attn = attend(q, k, v, cos, sin)
        txt_attn, img_attn = attn[:, : txt.shape[1]], attn[:, txt.shape[1]:]
        outs = []
        for stream, x, a, m in ((self.img, img, img_attn, mods[0]), (self.txt, txt, txt_attn, mods[1])):
            x = x + m[2] * stream.proj(a)
            outs.append(x + m[5] * stream.mlp(modulate(x, m[3], m[4])))
        return outs


class SingleBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.mod = nn.Linear(HIDDEN, 3 * HIDDEN)
        self.linear1 = nn.Linear(HIDDEN, 3 * HIDDEN + MLP)
        self.linear2 = nn.Linear(HIDDEN + MLP, HIDDEN)
        self.norm_q, self.norm_k = RMS(), RMS()

    def forward(self, x, vec, cos, sin):
        shift, scale, gate = self.mod(F.silu(vec)).chunk(3, dim=-1)
        fused = self.linear1(modulate(x, shift, scale))
        qkv, mlp = fused[..., : 3 * HIDDEN], fused[..., 3 * HIDDEN:]
        q, k, v = heads(qkv.contiguous(), self.norm_q, self.norm_k, x.shape[1])
        attn = attend(q, k, v, cos, sin)
        return x + gate * self.linear2(torch.cat((attn, F.gelu(mlp, approximate="tanh")), dim=2))


def timed(fn, repeats):
    fn()
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--text", type=int, required=True, help="text + style tokens")
    parser.add_argument("--image", type=int, required=True, help="image + reference tokens")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--dtype", choices=["bf16", "f32"], default="bf16")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    length = args.text + args.image
    angles = torch.rand(length, HEAD_DIM // 2) * 6.28
    cos, sin = angles.cos(), angles.sin()
    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    vec = torch.randn(1, 1, HIDDEN, dtype=dtype)
    with torch.inference_mode():
        double = DoubleBlock().to(dtype)
        img = torch.randn(1, args.image, HIDDEN, dtype=dtype)
        txt = torch.randn(1, args.text, HIDDEN, dtype=dtype)
        double_s = timed(lambda: double(img, txt, vec, cos, sin), args.repeats)
        del double
        single = SingleBlock().to(dtype)
        x = torch.randn(1, length, HIDDEN, dtype=dtype)
        single_s = timed(lambda: single(x, vec, cos, sin), args.repeats)
    print(json.dumps({"double": double_s, "single": single_s, "torch": torch.__version__, "threads": args.threads,
                      "dtype": args.dtype}))


if __name__ == "__main__":
    main()
