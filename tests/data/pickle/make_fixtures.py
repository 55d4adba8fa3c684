#!/usr/bin/env python3
"""Writes the small checkpoint fixtures used by tests/test_pytorch_checkpoint.cpp.

torch is not needed: stand-in `torch` / `torch._utils` modules give the real Python pickler the
same globals, persistent ids and reduce tuples that torch.save() produces, and the ZIP is laid
out like torch's (stored entries, data padded to 64 bytes through the local extra field).

    python3 tests/data/pickle/make_fixtures.py   # rewrites the .bin files next to this script
"""
import collections
import os
import pickle
import struct
import sys
import types
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))

torch = types.ModuleType("torch")
torch_utils = types.ModuleType("torch._utils")
torch._utils = torch_utils
sys.modules["torch"] = torch
sys.modules["torch._utils"] = torch_utils

STORAGE_TYPES = {  # name -> (struct format, element size)
    "FloatStorage": ("f", 4), "HalfStorage": ("e", 2), "LongStorage": ("q", 8),
    "BoolStorage": ("?", 1), "BFloat16Storage": ("H", 2),
}
for name in STORAGE_TYPES:
    cls = type(name, (), {})
    cls.__module__ = "torch"
    setattr(torch, name, cls)


def _rebuild_tensor_v2(*args):
    raise RuntimeError("never called")


_rebuild_tensor_v2.__module__ = "torch._utils"
torch_utils._rebuild_tensor_v2 = _rebuild_tensor_v2


class Storage:
    def __init__(self, type_name, key, values):
        self.type_name, self.key, self.values = type_name, key, values

    def data(self):
        fmt, _ = STORAGE_TYPES[self.type_name]
        return struct.pack("<%d%s" % (len(self.values), fmt), *self.values)


class Tensor:
    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    def __reduce_ex__(self, protocol):
        return (torch_utils._rebuild_tensor_v2,
                (self.storage, self.offset, tuple(self.size), tuple(self.stride), False,
                 collections.OrderedDict()))


class TorchPickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            return ("storage", getattr(torch, obj.type_name), obj.key, "cpu", len(obj.values))
        return None


def write_checkpoint(path, prefix, state_dict, storages, protocol):
    import io
    buf = io.BytesIO()
    TorchPickler(buf, protocol=protocol).dump(state_dict)
    records = [("data.pkl", buf.getvalue()), ("byteorder", b"little")]
    records += [("data/" + s.key, s.data()) for s in storages]
    records += [("version", b"3\n")]
    with open(path, "wb") as f:
        with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED) as z:
            for name, data in records:
                info = zipfile.ZipInfo(prefix + "/" + name, date_time=(1980, 1, 1, 0, 0, 0))
                # Pad like torch: an extra field that puts the data on a 64-byte boundary.
                start = f.tell() + 30 + len(info.filename) + 4
                pad = (-start) % 64
                info.extra = struct.pack("<HH", 0x4246, pad) + b"Z" * pad
                z.writestr(info, data)


def main():
    # Protocol 4 (FRAME, SHORT_BINUNICODE, MEMOIZE, STACK_GLOBAL), an OrderedDict with
    # _metadata (REDUCE + SETITEMS + BUILD), tied weights, a storage shared by two views,
    # several dtypes, a scalar and a size-1 dimension with an arbitrary stride.
    emb = Storage("FloatStorage", "0", [float(i) * 0.5 for i in range(12)])
    half = Storage("HalfStorage", "1", [1.0, -2.0, 0.25, 65504.0])
    longs = Storage("LongStorage", "2", [-1, 2**40, 3])
    flags = Storage("BoolStorage", "3", [True, False, True])
    bf16 = Storage("BFloat16Storage", "4", [0x3F80, 0xC000])
    embedding = Tensor(emb, 0, [3, 4], [4, 1])
    sd = collections.OrderedDict()
    sd["embedding.weight"] = embedding
    sd["half"] = Tensor(half, 1, [3, 1], [1, 7])
    sd["longs"] = Tensor(longs, 0, [3], [1])
    sd["scalar"] = Tensor(longs, 2, [], [])
    sd["flags"] = Tensor(flags, 0, [1, 3], [3, 1])
    sd["bf16"] = Tensor(bf16, 0, [2], [1])
    sd["lm_head.weight"] = embedding
    sd._metadata = collections.OrderedDict([("", {"version": 1}), ("embedding", {"version": 1})])
    write_checkpoint(os.path.join(HERE, "ordered_p4.bin"), "ordered_p4", sd,
                     [emb, half, longs, flags, bf16], protocol=4)


if __name__ == "__main__":
    main()
