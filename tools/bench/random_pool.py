"""Fast random safetensors files for the full-size benchmarks (never commit their output).

Drawing ~12 billion normal samples takes tens of CPU minutes on a shared 2-core machine, yet a
benchmark's timings do not depend on the values. So each file is written from a seeded pool of
2^22 - 3 normal samples (an odd length, so rows of a matrix do not repeat in step with it): a tensor
is the pool scaled to its own standard deviation and read cyclically from a seeded random offset.
Writing then costs little more than the disk. Values stay N(0, scale²) marginally, so activations
keep sensible magnitudes through the layers.
"""

import json
import os
import struct

import numpy as np

POOL_LENGTH = (1 << 22) - 3
STORAGE = {"BF16": 2, "F32": 4}


class RandomPool:
    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)
        self.unit = self.rng.standard_normal(POOL_LENGTH, dtype=np.float32)
        self.cache = {}

    def doubled(self, scale, dtype):
        """The scaled pool twice over as raw bytes, so any cyclic window is one contiguous slice."""
        key = (scale, dtype)
        if key not in self.cache:
            values = self.unit * np.float32(scale)
            if dtype == "BF16":  # round to nearest even, then keep the high 16 bits
                bits = values.view(np.uint32)
                bits = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
                raw = bits.astype(np.uint16).tobytes()
            else:
                raw = values.tobytes()
            self.cache[key] = memoryview(raw + raw)
        return self.cache[key]

    def write(self, out, count, scale, dtype):
        """Writes `count` values: the constant 1 for scale None, else the scaled pool from a random offset."""
        width = STORAGE[dtype]
        if scale is None:
            one = b"\x80\x3f" if dtype == "BF16" else struct.pack("<f", 1.0)
            out.write(one * count)
            return
        pool = self.doubled(scale, dtype)
        offset = int(self.rng.integers(POOL_LENGTH))
        while count > 0:
            n = min(count, POOL_LENGTH)
            out.write(pool[offset * width:(offset + n) * width])
            count -= n


def write_safetensors(path, entries, seed):
    """entries: [(name, shape, dtype 'BF16'|'F32', scale or None for ones)], written in order,
    header first, then each tensor; the file appears under its name only once complete."""
    header, offset = {}, 0
    for name, shape, dtype, _ in entries:
        size = STORAGE[dtype] * int(np.prod(shape, dtype=np.int64))
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)
    pool = RandomPool(seed)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    temporary = path + ".incomplete"
    with open(temporary, "wb") as out:
        out.write(struct.pack("<Q", len(blob)) + blob)
        for name, shape, dtype, scale in entries:
            pool.write(out, int(np.prod(shape, dtype=np.int64)), scale, dtype)
    os.replace(temporary, path)
    print(f"wrote {path}: {len(entries)} tensors, {offset / 1e9:.2f} GB", flush=True)
