"""PyTorch's side of `uso-bench gemm|attention`: times one operation per request, so that the
benchmark can time uso and PyTorch back to back, a fraction of a second apart.

`uso-bench` starts this script and talks to it over stdin/stdout, one line each way:
    gemm M K N DTYPE          x [M, K] @ weight[N, K]^T, as a linear layer (DTYPE: F32 or BF16)
    attention L H D DTYPE     scaled-dot-product attention, one batch, H heads of L tokens and D dims
answered by {"seconds": S} (one timed run; the first request for a shape also warms it up), or
{"error": ...}. By hand:  echo "gemm 4096 3072 3072 BF16" | python3 tools/bench/torch_gemm.py
"""
import json
import sys
import time

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    print(json.dumps({"error": "torch is not installed"}), flush=True)
    sys.exit(0)

DTYPES = {"F32": torch.float32, "BF16": torch.bfloat16}


def operation(request: str):
    """The timed closure for a request line, with its inputs made once."""
    op, *sizes, dtype_name = request.split()
    dtype, sizes = DTYPES[dtype_name], [int(s) for s in sizes]
    generator = torch.Generator().manual_seed(0)
    if op == "gemm":
        m, k, n = sizes
        x = torch.randn(m, k, generator=generator).to(dtype)
        w = torch.randn(n, k, generator=generator).to(dtype)
        return lambda: F.linear(x, w)
    if op == "attention":
        length, heads, dim = sizes
        q, k, v = (torch.randn(1, heads, length, dim, generator=generator).to(dtype) for _ in range(3))
        return lambda: F.scaled_dot_product_attention(q, k, v)
    raise ValueError(f"unknown operation '{op}'")


def main():
    operations = {}
    with torch.no_grad():
        for line in sys.stdin:
            request = line.strip()
            try:
                if request not in operations:
                    operations[request] = operation(request)
                    operations[request]()      # warm-up: oneDNN builds its kernels, pages are touched
                run = operations[request]
                start = time.perf_counter()
                run()
                answer = {"seconds": time.perf_counter() - start}
            except (ValueError, KeyError) as error:
                answer = {"error": f"bad request '{request}': {error}"}
            print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
