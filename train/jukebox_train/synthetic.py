"""A small synthetic dataset in the builder's layout (manifest.json + stereo 16-bit WAVs), for
the CI smoke run and for tests: no download, seconds to make. Two "genres" (tones, noise
bursts) and two "artists" (different pitch ranges), one held-out track per genre.

  train/jukebox-train synthetic --out DIR [--tracks 6] [--seconds 4] [--sr 22050]
"""
import argparse
import json
import os
import wave

import numpy as np


def _track(kind, artist, seconds, sr, rng):
    n = int(seconds * sr)
    t = np.arange(n) / sr
    base = 220.0 if artist == 'low_synth' else 660.0
    if kind == 'tones':
        notes = base * 2 ** (rng.integers(0, 12, size=int(seconds * 4) + 1) / 12)
        f = np.repeat(notes, int(sr / 4) + 1)[:n]
        x = 0.3 * np.sin(2 * np.pi * np.cumsum(f) / sr)
    else:
        env = (np.sin(2 * np.pi * 2 * t) > 0).astype(np.float64)
        x = 0.2 * rng.standard_normal(n) * env + 0.1 * np.sin(2 * np.pi * base * t)
    pan = rng.uniform(0.3, 0.7)
    return np.stack([x * pan, x * (1 - pan)], axis=1)


def _write_wav(path, stereo, sr):
    pcm = (np.clip(stereo, -1, 1) * 32767).astype('<i2')
    with wave.open(path, 'wb') as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes(pcm.tobytes())


def build(out, tracks=6, seconds=4.0, sr=22050, seed=0):
    rng = np.random.default_rng(seed)
    os.makedirs(os.path.join(out, 'audio'), exist_ok=True)
    rows = []
    for i in range(tracks):
        genre = ['tones', 'noise'][i % 2]
        artist = ['low_synth', 'high_synth'][(i // 2) % 2]
        tid = f'synth-{i:02d}'
        audio = _track(genre, artist, seconds, sr, rng)
        _write_wav(os.path.join(out, 'audio', f'{tid}.wav'), audio, sr)
        rows.append({
            'id': tid, 'audio': f'audio/{tid}.wav', 'package': 'synthetic', 'package_version': '0',
            'file': f'{tid}.wav', 'licence': 'CC0-1.0', 'artist': artist, 'composer': artist, 'title': tid,
            'genre': genre, 'raw_genre': genre, 'duration': len(audio) / sr, 'samples': len(audio),
            'split': 'test' if i >= tracks - 2 else 'train', 'lyrics': None, 'sha256': None,
        })
    manifest = {
        'version': 1, 'sr': sr, 'channels': 2, 'created_by': 'jukebox-train synthetic', 'packages': [],
        'genres': sorted({r['genre'] for r in rows}), 'artists': sorted({r['artist'] for r in rows}), 'tracks': rows,
    }
    with open(os.path.join(out, 'manifest.json'), 'w') as f:
        json.dump(manifest, f, indent=1)
    return manifest


def main(argv):
    ap = argparse.ArgumentParser(prog='jukebox-train synthetic', description=__doc__.split('\n')[0])
    ap.add_argument('--out', required=True)
    ap.add_argument('--tracks', type=int, default=6)
    ap.add_argument('--seconds', type=float, default=4.0)
    ap.add_argument('--sr', type=int, default=22050)
    ap.add_argument('--seed', type=int, default=0)
    a = ap.parse_args(argv)
    m = build(a.out, a.tracks, a.seconds, a.sr, a.seed)
    print(f'wrote {len(m["tracks"])} synthetic tracks to {a.out}')
    return 0
