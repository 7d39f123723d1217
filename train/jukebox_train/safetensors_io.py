"""safetensors files as the engine reads them (lib/checkpoint/safetensors.ts): u64 LE header
length, JSON header {name: {dtype, shape, data_offsets}, "__metadata__": {str: str}} padded
with spaces to 8 bytes, then the little-endian tensor data. Written to a temporary name and
renamed, so an interrupted export never leaves a half file."""
import json
import os
import struct

import numpy as np
import torch

_DTYPES = {
    torch.float32: ('F32', np.float32),
    torch.float16: ('F16', np.float16),
    torch.int32: ('I32', np.int32),
    torch.int64: ('I64', np.int64),
}
_NP = {'F32': np.float32, 'F16': np.float16, 'I32': np.int32, 'I64': np.int64}


def save_file(path, tensors, metadata=None):
    """tensors: {name: torch.Tensor} (float32/float16/int32/int64); metadata: {str: str}."""
    header = {}
    blobs = []
    offset = 0
    for name, t in tensors.items():
        t = t.detach().cpu().contiguous()
        if t.dtype not in _DTYPES:
            raise ValueError(f'{name}: unsupported dtype {t.dtype}')
        tag, npt = _DTYPES[t.dtype]
        data = t.numpy().astype(npt, copy=False).tobytes()
        header[name] = {'dtype': tag, 'shape': list(t.shape), 'data_offsets': [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    if metadata:
        for k, v in metadata.items():
            if not isinstance(v, str):
                raise ValueError(f'metadata {k} must be a string')
        header['__metadata__'] = dict(metadata)
    raw = json.dumps(header, separators=(',', ':')).encode('utf-8')
    raw += b' ' * ((8 - len(raw) % 8) % 8)
    tmp = path + '.tmp'
    with open(tmp, 'wb') as f:
        f.write(struct.pack('<Q', len(raw)))
        f.write(raw)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def _read_header(f):
    (n,) = struct.unpack('<Q', f.read(8))
    header = json.loads(f.read(n))
    return header, header.pop('__metadata__', {})


def read_metadata(path):
    """The header's metadata {str: str}, without reading any tensor."""
    with open(path, 'rb') as f:
        return _read_header(f)[1]


def load_file(path):
    """-> (tensors {name: torch.Tensor}, metadata {str: str})."""
    with open(path, 'rb') as f:
        header, meta = _read_header(f)
        data = f.read()
    out = {}
    for name, info in header.items():
        a, b = info['data_offsets']
        arr = np.frombuffer(data[a:b], dtype=_NP[info['dtype']]).reshape(info['shape'])
        out[name] = torch.from_numpy(arr.copy())
    return out, meta
