"""Trained checkpoints -> a model folder the engine loads (lib/model-set.ts):

  train/jukebox-train export --vqvae RUN/checkpoint.pt --prior RUN2/checkpoint.pt [--prior ...]
                             --out models/default [--fp16] [--name NAME] [--temperature T]

Writes vqvae.safetensors (fp32: small, and the decoder's last layers are sensitive),
prior_level_L.safetensors (fp16 matrices with --fp16; vectors stay fp32) and model.json.
Every prior must have been trained on this VQ-VAE's codes (same hyperparameters)."""
import argparse
import json
import os

import torch

from . import train_prior, train_vqvae_run
from .prior import export_prior
from .vqvae_model import export_vqvae

FORMAT = 'jukebox-model-set/1'


def export(vqvae_ckpt, prior_ckpts, out, fp16=False, name='jukebox-node default', defaults=None, card='MODEL_CARD.md'):
    os.makedirs(out, exist_ok=True)
    vq, vck = train_vqvae_run.load_checkpoint(vqvae_ckpt)
    export_vqvae(vq, vck['hparams'], os.path.join(out, 'vqvae.safetensors'),
                 source={'file': os.path.basename(vqvae_ckpt), 'format': 'jukebox-train', 'step': vck['step']})
    priors, steps = {}, {'vqvae': vck['step']}
    for path in prior_ckpts:
        model, ck = train_prior.load_checkpoint(path)
        h = ck['hparams']
        if ck['vqvae_hparams'] != vck['hparams']:
            diff = sorted(k for k in set(h) | set(vck['hparams']) if ck['vqvae_hparams'].get(k) != vck['hparams'].get(k))
            raise SystemExit(f'{path} was trained on the codes of a different VQ-VAE (hyperparameters differ: {diff})')
        level = h['level']
        fname = f'prior_level_{level}.safetensors'
        export_prior(model, h, ck['vqvae_hparams'], ck['vocab'], os.path.join(out, fname),
                     dtype=torch.float16 if fp16 else torch.float32,
                     source={'file': os.path.basename(path), 'format': 'jukebox-train', 'step': ck['step']})
        priors[str(level)] = fname
        steps[f'prior_level_{level}'] = ck['step']
    manifest = {'format': FORMAT, 'name': name, 'vqvae': 'vqvae.safetensors',
                'priors': dict(sorted(priors.items(), key=lambda kv: -int(kv[0]))),
                'defaults': defaults or {}, 'training_steps': steps}
    if card and os.path.exists(os.path.join(out, card)):
        manifest['card'] = card
    with open(os.path.join(out, 'model.json'), 'w') as f:
        json.dump(manifest, f, indent=1)
        f.write('\n')
    return manifest


def main(argv):
    ap = argparse.ArgumentParser(prog='jukebox-train export', description=__doc__.split('\n')[0])
    ap.add_argument('--vqvae', required=True)
    ap.add_argument('--prior', action='append', default=[], help='a prior checkpoint (repeat per level)')
    ap.add_argument('--out', required=True)
    ap.add_argument('--fp16', action='store_true')
    ap.add_argument('--name', default='jukebox-node default')
    ap.add_argument('--temperature', type=float)
    a = ap.parse_args(argv)
    defaults = {'temperature': a.temperature} if a.temperature is not None else {}
    m = export(a.vqvae, a.prior, a.out, a.fp16, a.name, defaults)
    total = sum(os.path.getsize(os.path.join(a.out, f)) for f in [m['vqvae'], *m['priors'].values()])
    print(f"wrote {a.out}: VQ-VAE + priors for levels {', '.join(m['priors'])}, {total / 1e6:.1f} MB")
    return 0
