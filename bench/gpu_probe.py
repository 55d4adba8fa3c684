#!/usr/bin/env python3
"""The two ceilings of a CUDA GPU, measured with PyTorch: device-to-device copy bandwidth
(bytes read + written, GB/s) and the bf16 matrix-product rate (TFLOP/s, random data).
Prints one JSON object. Used by bench/cuda_suite.sh on the device machine."""
import json
import sys

import torch


def timed(fn, reps):
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    for _ in range(3):
        fn()
    times = []
    for _ in range(reps):
        start.record()
        fn()
        stop.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(stop) / 1e3)
    times.sort()
    return times[len(times) // 2]


def main():
    if not torch.cuda.is_available():
        print(json.dumps({"error": "no CUDA device"}))
        return 1
    n = 1 << 30  # 1 GiB per buffer: far past L2
    src = torch.randn(n // 4, device="cuda")
    dst = torch.empty_like(src)
    copy_s = timed(lambda: dst.copy_(src), 20)
    m = 8192
    a = torch.randn(m, m, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(m, m, device="cuda", dtype=torch.bfloat16)
    gemm_s = timed(lambda: a @ b, 10)
    print(json.dumps({
        "gpu": torch.cuda.get_device_name(0),
        "copy_gbs": round(2 * n / copy_s / 1e9, 1),
        "bf16_tflops": round(2 * m ** 3 / gemm_s / 1e12, 1),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
