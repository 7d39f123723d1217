"""Held-out metrics of an exported model folder (what the package ships), from the exported
files themselves:

  train/jukebox-train eval --data DIR [--model models/default] [--json OUT]    (npm run eval)

VQ-VAE: per level, spectral convergence (dB) and multi-resolution STFT distance of the
reconstruction of held-out tracks, next to the Jukebox paper's figures, and codebook use
(perplexity, dead codes). Priors: held-out bits per token per level next to a unigram
baseline of the same codes. DIR is the dataset (`jukebox-train data`) with its codes
(`jukebox-train codes`)."""
import argparse
import json
import os
import sys

import torch

from . import train_prior
from .prior import Prior
from .safetensors_io import load_file
from .common import REPO, load_manifest
from .train_vqvae_run import evaluate as evaluate_vqvae, print_vqvae_table
from .vqvae_model import EMA_BUFFERS, VQVAE


def load_exported_vqvae(path):
    tensors, meta = load_file(path)
    model = VQVAE(json.loads(meta['jukebox.hparams']))
    missing, unexpected = model.load_state_dict({k: v.float() for k, v in tensors.items()}, strict=False)
    missing = [k for k in missing if not k.endswith(EMA_BUFFERS)]
    if missing or unexpected:
        raise SystemExit(f'{path}: missing {missing}, unexpected {unexpected}')
    for cb in model.bottleneck.level_blocks:
        cb.initialised.fill_(True)
    return model.eval()


def load_exported_prior(path):
    tensors, meta = load_file(path)
    h, vqh = json.loads(meta['jukebox.hparams']), json.loads(meta['jukebox.vqvae_hparams'])
    model = Prior(h, vqh)
    model.load_state_dict({k: v.float() for k, v in tensors.items()})
    return model.eval(), h, vqh, json.loads(meta.get('jukebox.vocab', 'null'))


def main(argv):
    ap = argparse.ArgumentParser(prog='jukebox-train eval', description=__doc__.split('\n')[0])
    ap.add_argument('--data', default=os.path.join(REPO, 'train', 'cache', 'default'))
    ap.add_argument('--model', default=os.path.join(REPO, 'models', 'default'))
    ap.add_argument('--seconds', type=float, default=20.0, help='seconds of each held-out track for the VQ-VAE')
    ap.add_argument('--max-windows', type=int, default=128, help='held-out windows per prior')
    ap.add_argument('--json')
    a = ap.parse_args(argv)
    if not os.path.exists(os.path.join(a.data, 'manifest.json')):
        raise SystemExit(f'no dataset at {a.data}: build it with `train/jukebox-train data --out {a.data}` '
                         'and encode it with `train/jukebox-train codes` first')
    torch.set_num_threads(os.cpu_count() or 1)
    with open(os.path.join(a.model, 'model.json')) as f:
        ms = json.load(f)
    manifest = load_manifest(a.data)
    vq = load_exported_vqvae(os.path.join(a.model, ms['vqvae']))
    print(f"held-out: {sum(t['split'] == 'test' for t in manifest['tracks'])} tracks of {len(manifest['tracks'])}", file=sys.stderr)
    result = {'model': ms.get('name'), 'vqvae': evaluate_vqvae(vq, a.data, manifest, a.seconds), 'priors': []}
    print_vqvae_table(result['vqvae'])
    print('\nlevel  held-out bits/token  unigram baseline  tokens')
    for level in sorted((int(k) for k in ms['priors']), reverse=True):
        model, h, vqh, vocab = load_exported_prior(os.path.join(a.model, ms['priors'][str(level)]))
        test = train_prior.Codes(a.data, manifest, 'test', h, vqh, vocab)
        train = train_prior.Codes(a.data, manifest, 'train', h, vqh, vocab)
        r = {'level': level, **train_prior.evaluate(model, test, 8, a.max_windows, 'cpu', train)}
        result['priors'].append(r)
        print(f"{level:>5}  {r['bits_per_token']:>19.3f}  {r['unigram_bits_per_token']:>16.3f}  {r['tokens']:>6}")
    if a.json:
        with open(a.json, 'w') as f:
            json.dump(result, f, indent=1)
            f.write('\n')
    return 0
