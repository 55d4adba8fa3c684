"""Minimal safetensors reader/writer on top of torch only (no `safetensors` package needed).

File layout: 8-byte little-endian header length n, then n bytes of JSON
    {name: {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, "__metadata__": {...}}
(padded with spaces to a multiple of 8), then the raw little-endian tensor data; offsets are
relative to the end of the header.

Works with torch 1.13 and 2.x.
"""

import json
import struct
import sys

import torch

# safetensors dtype tag <-> torch dtype
_DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}
_TAGS = {v: k for k, v in _DTYPES.items()}

# Same-width integer views used to get at the raw bytes of types numpy lacks (bf16).
_RAW_VIEW = {torch.bfloat16: torch.int16}

if sys.byteorder != "little":  # pragma: no cover
    raise RuntimeError("safetensors_io assumes a little-endian host")


def read_safetensors(path, device="cpu"):
    """Return (tensors: dict name -> torch.Tensor, metadata: dict)."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n].decode("utf-8"))
    metadata = header.pop("__metadata__", {}) or {}
    base = 8 + n
    tensors = {}
    for name, info in header.items():
        dtype = _DTYPES.get(info["dtype"])
        if dtype is None:
            raise ValueError(f"{path}: tensor {name}: unsupported dtype {info['dtype']}")
        begin, end = info["data_offsets"]
        shape = list(info["shape"])
        if end == begin:
            t = torch.zeros(shape, dtype=dtype)
        else:
            # bytearray copy: torch.frombuffer needs a writable buffer to avoid a warning
            t = torch.frombuffer(bytearray(data[base + begin : base + end]), dtype=dtype).reshape(shape)
        tensors[name] = t.to(device)
    return tensors, metadata


def _tensor_bytes(t):
    t = t.detach().to("cpu").contiguous()
    if t.dtype in _RAW_VIEW:
        t = t.view(_RAW_VIEW[t.dtype])
    return t.numpy().tobytes()


def write_safetensors(path, tensors, metadata=None):
    """Write dict name -> tensor. Each tensor is written in its own dtype."""
    header = {}
    blobs = []
    offset = 0
    for name, t in tensors.items():
        if t.dtype not in _TAGS:
            raise ValueError(f"tensor {name}: unsupported dtype {t.dtype}")
        b = _tensor_bytes(t)
        header[name] = {"dtype": _TAGS[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    hb = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hb += b" " * ((8 - len(hb) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for b in blobs:
            f.write(b)
