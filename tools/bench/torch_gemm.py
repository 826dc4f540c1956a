"""PyTorch's CPU numbers for the shapes `uso-bench` times, printed as one JSON object per line.

Run by `swift run -c release uso-bench gemm|attention` (it spawns this script), or by hand:
    python3 tools/bench/torch_gemm.py gemm --repeats 5
    python3 tools/bench/torch_gemm.py attention --repeats 3
Each line: {"op": ..., "shape": ..., "dtype": ..., "seconds": best, "gflops": ...}.
"""
import argparse
import json
import sys
import time

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    print(json.dumps({"error": "torch is not installed"}))
    sys.exit(0)

DTYPES = {"F32": torch.float32, "BF16": torch.bfloat16}


def best_of(repeats, run):
    run()  # warm-up: lets oneDNN build its kernels
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def gemm(repeats):
    # Same layout as a linear layer: x [M, K] @ weight[N, K]^T.
    for m, k, n in [(4096, 3072, 3072), (4096, 3072, 12288)]:
        for name, dtype in DTYPES.items():
            generator = torch.Generator().manual_seed(0)
            x = torch.randn(m, k, generator=generator).to(dtype)
            w = torch.randn(n, k, generator=generator).to(dtype)
            seconds = best_of(repeats, lambda: F.linear(x, w))
            print(json.dumps({"op": "gemm", "shape": f"{m}x{k}@{k}x{n}", "dtype": name,
                              "seconds": seconds, "gflops": 2 * m * n * k / seconds / 1e9}), flush=True)


def attention(repeats, length, heads, dim):
    for name, dtype in DTYPES.items():
        generator = torch.Generator().manual_seed(0)
        q, k, v = (torch.randn(1, heads, length, dim, generator=generator).to(dtype) for _ in range(3))
        seconds = best_of(repeats, lambda: F.scaled_dot_product_attention(q, k, v))
        flops = 4 * heads * length * length * dim
        print(json.dumps({"op": "attention", "shape": f"L{length}xH{heads}xD{dim}", "dtype": name,
                          "seconds": seconds, "gflops": flops / seconds / 1e9}), flush=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["gemm", "attention"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--length", type=int, default=4096)
    parser.add_argument("--heads", type=int, default=24)
    parser.add_argument("--dim", type=int, default=128)
    args = parser.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    with torch.no_grad():
        if args.mode == "gemm":
            gemm(args.repeats)
        else:
            attention(args.repeats, args.length, args.heads, args.dim)


if __name__ == "__main__":
    main()
