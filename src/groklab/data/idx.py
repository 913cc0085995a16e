"""The IDX format of the MNIST files: a big-endian header (magic, dimension sizes), then raw values."""

from __future__ import annotations

import struct
import sys

import torch

from groklab.errors import GroklabError

BIG_ENDIAN_HOST = sys.byteorder == "big"

# The third byte of the magic number names the element type.
DTYPES = {
    0x08: (torch.uint8, 1),
    0x09: (torch.int8, 1),
    0x0B: (torch.int16, 2),
    0x0C: (torch.int32, 4),
    0x0D: (torch.float32, 4),
    0x0E: (torch.float64, 8),
}


def read_idx(data: bytes, name: str = "IDX data") -> torch.Tensor:
    """Decode one IDX file's (decompressed) bytes into a tensor of its shape and type."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in DTYPES:
        raise GroklabError(f"task.data_dir: {name} is not an IDX file (bad magic number)")
    dtype, size = DTYPES[data[2]]
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise GroklabError(f"task.data_dir: {name} is truncated (incomplete IDX header)")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    count = 1
    for n in shape:
        count *= n
    if len(data) != header + count * size:
        raise GroklabError(f"task.data_dir: {name} holds {len(data) - header} data bytes, its header says {count * size}")
    flat = torch.frombuffer(bytearray(data[header:]), dtype=torch.uint8)
    if size > 1 and not BIG_ENDIAN_HOST:  # IDX is big-endian: swap each value's bytes
        flat = flat.view(-1, size).flip(1).reshape(-1)
    return flat.view(dtype).reshape(shape)


def write_idx(tensor: torch.Tensor) -> bytes:
    """Encode a tensor as IDX bytes (the inverse of read_idx; for tests and small custom sets)."""
    codes = {dt: code for code, (dt, _) in DTYPES.items()}
    if tensor.dtype not in codes:
        raise ValueError(f"IDX has no type for {tensor.dtype}")
    size = DTYPES[codes[tensor.dtype]][1]
    header = bytes([0, 0, codes[tensor.dtype], tensor.dim()]) + struct.pack(f">{tensor.dim()}I", *tensor.shape)
    body = tensor.contiguous().reshape(-1).view(torch.uint8)
    if size > 1 and not BIG_ENDIAN_HOST:
        body = body.view(-1, size).flip(1).reshape(-1)
    return header + bytes(body.tolist())
