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


def line_plot(series, width=640, height=240, pad=8):
    """Curves on a white canvas, each scaled to the shared y range: series = [(xs, ys, (r, g, b))].
    -> uint8 RGB. Deliberately minimal (no axes text): the model card states the ranges."""
    img = np.full((height, width, 3), 255, dtype=np.uint8)
    xs_all = np.concatenate([np.asarray(s[0], float) for s in series])
    ys_all = np.concatenate([np.asarray(s[1], float) for s in series])
    x0, x1 = xs_all.min(), max(xs_all.max(), xs_all.min() + 1e-9)
    y0, y1 = ys_all.min(), max(ys_all.max(), ys_all.min() + 1e-9)
    img[height - pad, pad:width - pad] = 180  # baseline
    for xs, ys, colour in series:
        px = pad + (np.asarray(xs, float) - x0) / (x1 - x0) * (width - 2 * pad - 1)
        py = height - pad - (np.asarray(ys, float) - y0) / (y1 - y0) * (height - 2 * pad - 1)
        for i in range(len(px) - 1):
            n = int(max(abs(px[i + 1] - px[i]), abs(py[i + 1] - py[i]), 1)) + 1
            for t in np.linspace(0, 1, n):
                x = int(round(px[i] + t * (px[i + 1] - px[i])))
                y = int(round(py[i] + t * (py[i + 1] - py[i])))
                img[max(0, y - 1):y + 1, max(0, x - 1):x + 1] = colour
    return img
