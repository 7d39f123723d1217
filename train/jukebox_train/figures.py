"""The model card's figures: 10 s generated with the engine per genre of a model folder, drawn
as spectrogram PNGs (png.py), plus a JSON of what was run.

  train/jukebox-train figures --model models/default --out models/default/figures [--seconds 10] [--seed 1]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import wave

import numpy as np

from .common import REPO
from .png import line_plot, spectrogram_image, write_png
from .safetensors_io import read_metadata


def read_wav_mono(path):
    with wave.open(path, 'rb') as w:
        sr, ch, width = w.getframerate(), w.getnchannels(), w.getsampwidth()
        raw = w.readframes(w.getnframes())
    if width != 2:
        raise ValueError(f'{path}: expected 16-bit PCM')
    x = np.frombuffer(raw, dtype='<i2').astype(np.float32) / 32768.0
    return x.reshape(-1, ch).mean(axis=1), sr


def genres_of(model_dir):
    """The genre names in the top prior's vocabulary (safetensors metadata), id order."""
    with open(os.path.join(model_dir, 'model.json')) as f:
        ms = json.load(f)
    levels = sorted(int(k) for k in ms['priors'])
    meta = read_metadata(os.path.join(model_dir, ms['priors'][str(levels[-1])]))
    vocab = json.loads(meta['jukebox.vocab'])
    return [g for g, i in sorted(vocab['genres'].items(), key=lambda kv: kv[1]) if i > 0]


COLOURS = [(200, 40, 40), (40, 120, 200), (40, 160, 60), (150, 60, 170)]


def smooth(v, k=20):
    v = np.asarray(v, float)
    if len(v) < k:
        return v
    return np.convolve(v, np.ones(k) / k, mode='valid')


def training_curves(runs, out):
    """runs: {name: log.jsonl}; one PNG per run of its loss (moving average), and their ranges."""
    info = {}
    for name, path in runs.items():
        if not os.path.exists(path):
            continue
        rows = [json.loads(l) for l in open(path)]
        key = 'loss' if 'loss' in rows[0] else next(k for k in rows[0] if 'loss' in k)
        ys = smooth([r[key] for r in rows], 5)
        xs = [r['step'] for r in rows][len(rows) - len(ys):]
        write_png(os.path.join(out, f'loss-{name}.png'), line_plot([(xs, ys, COLOURS[0])]))
        info[name] = {'png': f'loss-{name}.png', 'steps': [int(xs[0]), int(xs[-1])], 'loss': [round(float(ys.max()), 3), round(float(ys.min()), 3)],
                      'first': round(float(ys[0]), 3), 'last': round(float(ys[-1]), 3)}
    return info


def main(argv):
    ap = argparse.ArgumentParser(prog='jukebox-train figures', description=__doc__.split('\n')[0])
    ap.add_argument('--model', default=os.path.join(REPO, 'models', 'default'))
    ap.add_argument('--out', default=os.path.join(REPO, 'models', 'default', 'figures'))
    ap.add_argument('--seconds', type=float, default=10.0)
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--runs', default=os.path.join(REPO, 'train', 'runs'), help='training runs whose log.jsonl to plot')
    a = ap.parse_args(argv)
    os.makedirs(a.out, exist_ok=True)
    curves = training_curves({n: os.path.join(a.runs, n, 'log.jsonl') for n in ('vqvae', 'prior2', 'prior1', 'prior0')}, a.out)
    with open(os.path.join(a.out, 'training.json'), 'w') as f:
        json.dump(curves, f, indent=1)
    cli = os.path.join(REPO, 'bin', 'jukebox.js')
    runs = []
    for genre in genres_of(a.model):
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.time()
            subprocess.run(['node', cli, 'generate', '--model', a.model, '--genre', genre, '--seconds', str(a.seconds),
                            '--seed', str(a.seed), '-o', tmp], check=True, env={**os.environ, 'CI': '1'},
                           stdout=subprocess.DEVNULL)
            wall = time.time() - t0
            x, sr = read_wav_mono(os.path.join(tmp, 'sample_0.wav'))
        name = f'sample-{genre}.png'
        write_png(os.path.join(a.out, name), spectrogram_image(x, sr))
        rms = float(np.sqrt(np.mean(x ** 2)))
        runs.append({'genre': genre, 'seed': a.seed, 'seconds': a.seconds, 'png': name, 'wall_s': round(wall, 1),
                     'rms': round(rms, 4), 'peak': round(float(np.abs(x).max()), 4)})
        print(f'{genre}: {name} ({wall:.1f} s, rms {rms:.3f})', file=sys.stderr)
    with open(os.path.join(a.out, 'samples.json'), 'w') as f:
        json.dump(runs, f, indent=1)
    return 0
