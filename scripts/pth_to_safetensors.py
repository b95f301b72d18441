#!/usr/bin/env python3
"""Convert a PyTorch checkpoint (.pth) of a torchvision-style ResNet to safetensors with balms's
names, without PyTorch: only the Python standard library.

    python3 scripts/pth_to_safetensors.py resnet152-imagenet.pth weights/resnet152-imagenet.safetensors

Reads the zip format of `torch.save` (PyTorch >= 1.6): `data.pkl` is unpickled with tensors
rebuilt as (storage, offset, shape, stride) records whose bytes come from `data/<key>`. Accepted
checkpoints: a state dict (torchvision's `model.state_dict()`), or nested dicts of them (Kang et
al.'s `{'state_dict_best': {'feat_model': ..., 'classifier': ...}}`): tensors keep their innermost
names. Names are mapped mechanically:

    module. prefix (DataParallel)   dropped
    fc.weight, fc.bias              classifier.weight, classifier.bias
    anything else (conv1.weight...) backbone.<name>
    *.num_batches_tracked           dropped (tch's batch norm has no such buffer)

Floating tensors are written as float32 (`--keep-dtype` keeps half/bfloat16).
"""
import argparse
import collections
import json
import pickle
import struct
import sys
import zipfile

# storage class name -> (safetensors dtype, bytes per element, struct code)
DTYPES = {
    "FloatStorage": ("F32", 4, "f"),
    "DoubleStorage": ("F64", 8, "d"),
    "HalfStorage": ("F16", 2, "e"),
    "BFloat16Storage": ("BF16", 2, None),
    "LongStorage": ("I64", 8, "q"),
    "IntStorage": ("I32", 4, "i"),
    "ShortStorage": ("I16", 2, "h"),
    "CharStorage": ("I8", 1, "b"),
    "ByteStorage": ("U8", 1, "B"),
    "BoolStorage": ("BOOL", 1, "?"),
}


class StorageType:
    def __init__(self, name):
        if name not in DTYPES:
            raise SystemExit(f"unsupported storage type torch.{name}")
        self.name = name


class TensorRecord:
    def __init__(self, storage, offset, shape, stride):
        self.storage, self.offset, self.shape, self.stride = storage, offset, tuple(shape), tuple(stride)


def rebuild_tensor(storage, offset, shape, stride, *_rest):
    return TensorRecord(storage, offset, shape, stride)


def rebuild_parameter(data, *_rest):
    return data


class Unpickler(pickle.Unpickler):
    def __init__(self, file, archive, prefix):
        super().__init__(file)
        self.archive, self.prefix = archive, prefix

    def find_class(self, module, name):
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return rebuild_tensor
        if module == "torch._utils" and name == "_rebuild_parameter":
            return rebuild_parameter
        if module == "torch" and name.endswith("Storage"):
            return StorageType(name)
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch" and name in ("Size",):
            return tuple
        raise pickle.UnpicklingError(f"unsupported object {module}.{name} in the checkpoint")

    def persistent_load(self, pid):
        kind, storage_type, key, _location, _numel = pid
        if kind != "storage":
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r}")
        return (storage_type, self.archive.read(f"{self.prefix}/data/{key}"))


def load(path):
    with zipfile.ZipFile(path) as archive:
        pickles = [n for n in archive.namelist() if n.endswith("/data.pkl")]
        if len(pickles) != 1:
            raise SystemExit(f"{path}: not a torch.save zip checkpoint (no single data.pkl)")
        prefix = pickles[0][: -len("/data.pkl")]
        with archive.open(pickles[0]) as f:
            return Unpickler(f, archive, prefix).load()


def leaves(obj, out):
    """Tensors of nested dicts, by innermost name."""
    for name, value in obj.items():
        if isinstance(value, TensorRecord):
            if name in out:
                raise SystemExit(f"tensor name `{name}` appears twice in the checkpoint")
            out[name] = value
        elif isinstance(value, dict):
            leaves(value, out)
    return out


def balms_name(name):
    if name.startswith("module."):
        name = name[len("module."):]
    if name.endswith("num_batches_tracked"):
        return None
    if name.startswith("fc."):
        return "classifier." + name[len("fc."):]
    return "backbone." + name


def tensor_bytes(record, keep_dtype):
    storage_type, data = record.storage
    dtype, size, code = DTYPES[storage_type.name]
    count = 1
    for d in record.shape:
        count *= d
    contiguous, expect = True, 1
    for d, s in zip(reversed(record.shape), reversed(record.stride)):
        if d != 1 and s != expect:
            contiguous = False
        expect *= d
    if contiguous:
        raw = data[record.offset * size:(record.offset + count) * size]
    else:
        index = [0] * len(record.shape)
        chunks = []
        for _ in range(count):
            at = record.offset + sum(i * s for i, s in zip(index, record.stride))
            chunks.append(data[at * size:(at + 1) * size])
            for axis in reversed(range(len(index))):
                index[axis] += 1
                if index[axis] < record.shape[axis]:
                    break
                index[axis] = 0
        raw = b"".join(chunks)
    if not keep_dtype and dtype in ("F64", "F16"):
        values = struct.unpack(f"<{count}{code}", raw)
        return "F32", struct.pack(f"<{count}f", *values)
    if not keep_dtype and dtype == "BF16":
        widened = b"".join(b"\0\0" + raw[i:i + 2] for i in range(0, len(raw), 2))
        return "F32", widened
    return dtype, raw


def save(tensors, path):
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        dtype, shape, raw = tensors[name]
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pth")
    parser.add_argument("safetensors")
    parser.add_argument("--keep-dtype", action="store_true")
    args = parser.parse_args()
    checkpoint = load(args.pth)
    if not isinstance(checkpoint, dict):
        raise SystemExit(f"{args.pth}: expected a state dict, found {type(checkpoint).__name__}")
    out = {}
    for name, record in leaves(checkpoint, collections.OrderedDict()).items():
        target = balms_name(name)
        if target is None:
            continue
        dtype, raw = tensor_bytes(record, args.keep_dtype)
        out[target] = (dtype, record.shape, raw)
    if not out:
        raise SystemExit(f"{args.pth}: no tensors found")
    save(out, args.safetensors)
    print(f"{args.safetensors}: {len(out)} tensors", file=sys.stderr)


if __name__ == "__main__":
    main()
