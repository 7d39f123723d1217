"""Minimal PNG writing (RGB, 8-bit) with numpy + zlib, and the spectrogram image the model
card shows. No plotting library needed (Debian's matplotlib pulls in a GUI stack)."""
import struct
import zlib

import numpy as np

# A perceptually ordered dark-to-bright map (anchors approximating 'magma'), interpolated.
_ANCHORS = np.array([
    [0, 0, 4], [28, 16, 68], [79, 18, 123], [129, 37, 129], [181, 54, 122],
    [229, 80, 100], [251, 135, 97], [254, 194, 135], [252, 253, 191],
], dtype=np.float64)


def colormap(v):
    """v in [0, 1] (any shape) -> uint8 RGB (shape + (3,))."""
    v = np.clip(v, 0, 1) * (len(_ANCHORS) - 1)
    i = np.minimum(np.floor(v).astype(int), len(_ANCHORS) - 2)
    f = (v - i)[..., None]
    return (_ANCHORS[i] * (1 - f) + _ANCHORS[i + 1] * f).round().astype(np.uint8)


def write_png(path, rgb):
    """rgb: uint8 array (height, width, 3)."""
    h, w, _ = rgb.shape
    raw = b''.join(b'\x00' + rgb[y].tobytes() for y in range(h))

    def chunk(tag, data):
        return struct.pack('>I', len(data)) + tag + data + struct.pack('>I', zlib.crc32(tag + data) & 0xFFFFFFFF)

    with open(path, 'wb') as f:
        f.write(b'\x89PNG\r\n\x1a\n')
        f.write(chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 2, 0, 0, 0)))
        f.write(chunk(b'IDAT', zlib.compress(raw, 9)))
        f.write(chunk(b'IEND', b''))


def spectrogram_image(x, sr, n_fft=1024, hop=256, height=256, floor_db=-80.0):
    """Log-magnitude STFT on a log-frequency axis (30 Hz .. sr/2), dB relative to the peak,
    low frequencies at the bottom. -> uint8 RGB (height, frames, 3)."""
    x = np.asarray(x, dtype=np.float64)
    if len(x) < n_fft:
        x = np.pad(x, (0, n_fft - len(x)))
    win = np.hanning(n_fft)
    frames = 1 + (len(x) - n_fft) // hop
    idx = np.arange(n_fft)[None, :] + hop * np.arange(frames)[:, None]
    mag = np.abs(np.fft.rfft(x[idx] * win, axis=1))  # (frames, bins)
    db = 20 * np.log10(mag + 1e-10)
    db -= db.max()
    freqs = np.fft.rfftfreq(n_fft, 1 / sr)
    rows = np.geomspace(30.0, sr / 2, height)
    img = np.stack([np.interp(rows, freqs, db[t]) for t in range(frames)], axis=1)  # (height, frames)
    v = (np.maximum(img, floor_db) - floor_db) / -floor_db
    return colormap(v[::-1])
