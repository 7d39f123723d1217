"""16-bit PCM WAV files as numpy memory maps: the training data is read straight from the
decoded files, without decoding or loading whole tracks per step."""
import struct

import numpy as np


def wav_layout(path):
    """-> (data offset, frames, channels, sample rate) of a 16-bit PCM WAV (walks the RIFF chunks:
    ffmpeg writes a LIST chunk before `data`, so the data does not start at byte 44)."""
    with open(path, 'rb') as f:
        riff, _, wave = struct.unpack('<4sI4s', f.read(12))
        if riff != b'RIFF' or wave != b'WAVE':
            raise ValueError(f'{path}: not a RIFF/WAVE file')
        fmt = None
        while True:
            head = f.read(8)
            if len(head) < 8:
                raise ValueError(f'{path}: no data chunk')
            cid, size = struct.unpack('<4sI', head)
            if cid == b'fmt ':
                tag, ch, sr, _, _, bits = struct.unpack('<HHIIHH', f.read(16))
                f.seek(size - 16 + (size & 1), 1)
                fmt = (tag, ch, sr, bits)
            elif cid == b'data':
                if fmt is None or fmt[0] not in (1, 0xFFFE) or fmt[3] != 16:
                    raise ValueError(f'{path}: expected 16-bit PCM, got {fmt}')
                return f.tell(), size // (2 * fmt[1]), fmt[1], fmt[2]
            else:
                f.seek(size + (size & 1), 1)


def open_wav(path):
    """-> (int16 memmap of shape (frames, channels), sample rate)."""
    offset, frames, ch, sr = wav_layout(path)
    return np.memmap(path, dtype='<i2', mode='r', offset=offset, shape=(frames, ch)), sr


def read_mono(path, start=0, length=None):
    """float32 mono (mean of the channels, as the original) of frames [start, start + length)."""
    m, sr = open_wav(path)
    end = len(m) if length is None else min(len(m), start + length)
    return (m[start:end].astype(np.float32) / 32768.0).mean(axis=1), sr
