"""Train and evaluate a prior (top level) or upsampler on VQ-VAE codes.

  train/jukebox-train prior --data DIR --level L --out RUNDIR [--smoke] [--minutes M]
      [--steps N] [--batch B] [--device cpu|cuda] [--resume] [--seed S] [--save-minutes 5]
  train/jukebox-train eval-prior --data DIR --level L --checkpoint RUNDIR/checkpoint.pt [--json OUT]

DIR/manifest.json lists the tracks (split train/test, artist, genre, samples); DIR/codes/<id>.npz
holds int16 codes l0, l1, l2. An example is a random n_ctx window of one train track at level
L, with the label row the engine builds at sampling time (lib/labels/labels.ts):
[total_length, offset, sample_length, artist, genre ids...]; upsamplers also get the same
window's codes of level L+1. --steps N stops at global step N (also across --resume);
--minutes is this invocation's wall-clock budget.
"""
import argparse
import json
import math
import os
import signal
import sys
import time

import numpy as np
import torch

from . import configs
from .common import load_manifest, norm_v2, save_checkpoint
from .prior import Prior, hop_lengths


# ---------------------------------------------------------------- data

def all_names(manifest, key):
    """The manifest's list (artists / genres) together with the names its tracks use."""
    return set(manifest.get(key + 's', [])) | {t[key] for t in manifest['tracks']}


def build_vocab(manifest):
    """id 0 = unknown (as the original's v2 files), then sorted names from 1. A v2 genre is a
    bag of words at sampling time, so the genre vocabulary is the set of genre words."""
    artists = sorted({norm_v2(a) for a in all_names(manifest, 'artist')} - {''})
    words = sorted({w for g in all_names(manifest, 'genre') for w in norm_v2(g).split('_')} - {''})
    return {'version': 'v2',
            'artists': {'unknown': 0, **{a: i + 1 for i, a in enumerate(artists)}},
            'genres': {'unknown': 0, **{g: i + 1 for i, g in enumerate(words)}}}


def genre_ids(vocab, genre):
    return [vocab['genres'].get(w, 0) for w in norm_v2(genre).split('_') if w] or [0]


def max_genre_words(manifest):
    return max([len(norm_v2(g).split('_')) for g in all_names(manifest, 'genre')] + [1])


class Codes:
    """The windows of one split at one level, with their label rows and upper-level codes."""

    def __init__(self, data, manifest, split, h, vq, vocab):
        self.level, self.n_ctx = h['level'], h['n_ctx']
        self.upsampler = self.level != vq['levels'] - 1
        hops = hop_lengths(vq)
        self.hop = hops[self.level]
        self.ratio = hops[self.level + 1] // self.hop if self.upsampler else 1
        self.n_genre = h['max_bow_genre_size']
        self.tracks, skipped = [], []
        for t in manifest['tracks']:
            if t['split'] != split:
                continue
            path = os.path.join(data, 'codes', f"{t['id']}.npz")
            if not os.path.exists(path):
                skipped.append((t['id'], 'no codes'))
                continue
            z = np.load(path)
            # kept as int16 (level 0 is 2756 codes/s at 22.05 kHz), widened per batch
            x = z[f'l{self.level}']
            up = z[f'l{self.level + 1}'] if self.upsampler else None
            if x.max(initial=0) >= vq['l_bins'] or x.min(initial=0) < 0:
                raise ValueError(f"{path}: codes outside [0, {vq['l_bins']})")
            if not self.upsampler:  # the timing embedding's ranges (LabelConditioner asserts them)
                sr = h['sr']
                if not h['min_duration'] * sr <= t['samples'] < h['max_duration'] * sr:
                    skipped.append((t['id'], 'duration outside [min_duration, max_duration)'))
                    continue
            n = len(x) - self.n_ctx
            if up is not None:  # the upper window must fit too; starts are multiples of ratio
                n = min(n, (len(up) - self.n_ctx // self.ratio) * self.ratio)
            if n < 0:
                skipped.append((t['id'], f'shorter than one window ({len(x)} < {self.n_ctx} tokens)'))
                continue
            g = genre_ids(vocab, t['genre'])[: self.n_genre]
            label = [t['samples'], 0, self.n_ctx * self.hop, vocab['artists'].get(norm_v2(t['artist']), 0),
                     *g, *[-1] * (self.n_genre - len(g))]
            self.tracks.append({'id': t['id'], 'x': x, 'up': up, 'label': label, 'starts': n // self.ratio + 1})
        self.skipped = skipped
        w = np.array([t['starts'] for t in self.tracks], dtype=np.float64)
        self.weights = w / w.sum() if len(w) else w

    def window(self, i, start):
        t = self.tracks[i]
        y = list(t['label'])
        y[1] = start * self.hop
        x = t['x'][start: start + self.n_ctx].astype(np.int64)
        up = None
        if self.upsampler:
            s = start // self.ratio
            up = t['up'][s: s + self.n_ctx // self.ratio].astype(np.int64)
        return x, y, up

    def batch(self, items):
        xs, ys, ups = zip(*[self.window(i, s) for i, s in items])
        up = torch.from_numpy(np.stack(ups)) if self.upsampler else None
        return torch.from_numpy(np.stack(xs)), torch.tensor(ys, dtype=torch.long), up

    def sample(self, rng, batch):
        """Random windows: a track weighted by its number of windows, then a uniform start."""
        idx = rng.choice(len(self.tracks), size=batch, p=self.weights)
        return self.batch([(i, int(rng.integers(self.tracks[i]['starts'])) * self.ratio) for i in idx])

    def fixed_windows(self, max_windows):
        """Non-overlapping windows from the start of every track, thinned evenly to max_windows."""
        items = [(i, k * self.n_ctx) for i, t in enumerate(self.tracks)
                 for k in range((t['starts'] - 1) * self.ratio // self.n_ctx + 1)]
        if len(items) > max_windows:
            items = [items[j] for j in np.linspace(0, len(items) - 1, max_windows).round().astype(int)]
        return items


def load_checkpoint(path, device='cpu'):
    """-> (model in eval mode, checkpoint dict with hparams, vqvae_hparams, vocab, step)."""
    ck = torch.load(path, map_location='cpu')
    model = Prior(ck['hparams'], ck['vqvae_hparams'])
    model.load_state_dict(ck['model'])
    return model.to(device).eval(), ck


# ---------------------------------------------------------------- training

def lr_at(step, frac, base, warmup):
    """Linear warmup, then a cosine decay to 10% over the budget (steps or minutes)."""
    w = min(1.0, (step + 1) / max(1, warmup))
    return base * w * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, frac))))


def fmt_time(s):
    s = int(max(0, s))
    return f'{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}'


def main(argv):
    ap = argparse.ArgumentParser(prog='jukebox-train prior', description='train a prior or upsampler on VQ-VAE codes')
    ap.add_argument('--data', required=True)
    ap.add_argument('--level', type=int, required=True)
    ap.add_argument('--out', required=True)
    ap.add_argument('--smoke', action='store_true', help='tiny model (configs.SMOKE_PRIOR, SMOKE_VQVAE)')
    ap.add_argument('--minutes', type=float, default=None, help='wall-clock budget of this run')
    ap.add_argument('--steps', type=int, default=None, help='stop at this global step')
    ap.add_argument('--batch', type=int, default=configs.PRIOR_TRAIN['batch'])
    ap.add_argument('--lr', type=float, default=configs.PRIOR_TRAIN['lr'])
    ap.add_argument('--warmup', type=int, default=configs.PRIOR_TRAIN['warmup'])
    ap.add_argument('--clip', type=float, default=1.0)
    ap.add_argument('--device', default='cpu')
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--resume', action='store_true')
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--save-minutes', type=float, default=5.0)
    ap.add_argument('--log-every', type=int, default=10)
    a = ap.parse_args(argv)
    if a.minutes is None and a.steps is None:
        ap.error('give --minutes and/or --steps')
    torch.set_num_threads(a.threads)
    os.makedirs(a.out, exist_ok=True)
    ck_path = os.path.join(a.out, 'checkpoint.pt')

    manifest = load_manifest(a.data)
    ck = None
    if a.resume and os.path.exists(ck_path):
        ck = torch.load(ck_path, map_location='cpu')
        h, vq, vocab = ck['hparams'], ck['vqvae_hparams'], ck['vocab']
        if h['level'] != a.level:
            ap.error(f"{ck_path} is a level {h['level']} model, not level {a.level}")
    else:
        vocab = build_vocab(manifest)
        vq = configs.vqvae_hparams(a.smoke)
        h = configs.prior_hparams(a.level, len(vocab['genres']), len(vocab['artists']), vq, a.smoke)
        h['max_bow_genre_size'] = max(h['max_bow_genre_size'], max_genre_words(manifest))
    data = Codes(a.data, manifest, 'train', h, vq, vocab)
    for tid, why in data.skipped:
        print(f'skipping {tid}: {why}', file=sys.stderr)
    if not data.tracks:
        raise SystemExit('no training windows: every train track was skipped')

    torch.manual_seed(a.seed)
    device = torch.device(a.device)
    model = Prior(h, vq).to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=a.lr, betas=(0.9, 0.95), eps=1e-8)
    step, trained_s = 0, 0.0
    rng = np.random.default_rng(a.seed)
    if ck is not None:
        model.load_state_dict(ck['model'])
        opt.load_state_dict(ck['opt'])
        step, trained_s = ck['step'], ck.get('trained_s', 0.0)
        rng.bit_generator.state = ck['rng']
        print(f'resumed {ck_path} at step {step}', file=sys.stderr)
    with open(os.path.join(a.out, 'hparams.json'), 'w') as f:
        json.dump({'hparams': h, 'vqvae_hparams': vq, 'vocab': vocab}, f, indent=1)
    n_params = sum(p.numel() for p in model.parameters())
    print(f'level {a.level}: {n_params / 1e6:.2f}M parameters, n_ctx {h["n_ctx"]}, {len(data.tracks)} tracks, '
          f'device {device}', file=sys.stderr)

    stop = {'flag': False}
    prev = signal.signal(signal.SIGINT, lambda *_: stop.update(flag=True))  # finish the step, save, exit
    signal.signal(signal.SIGTERM, lambda *_: stop.update(flag=True))

    def state():
        return {'model': model.state_dict(), 'opt': opt.state_dict(), 'step': step, 'trained_s': trained_s,
                'rng': rng.bit_generator.state, 'hparams': h, 'vqvae_hparams': vq, 'vocab': vocab,
                'args': vars(a)}

    t0 = time.time()
    last_save, start_step = t0, step
    budget_s = a.minutes * 60 if a.minutes is not None else None
    log = open(os.path.join(a.out, 'log.jsonl'), 'a')
    ema = None
    tty = sys.stderr.isatty()
    try:
        while not stop['flag']:
            el = time.time() - t0
            if (a.steps is not None and step >= a.steps) or (budget_s is not None and el >= budget_s):
                break
            fracs = []
            if a.steps is not None:
                fracs.append(step / a.steps)
            if budget_s is not None:
                fracs.append(el / budget_s)
            lr = lr_at(step, max(fracs), a.lr, a.warmup)
            for g in opt.param_groups:
                g['lr'] = lr
            x, y, up = data.sample(rng, a.batch)
            x, y = x.to(device), y.to(device)
            up = up.to(device) if up is not None else None
            loss, bits = model.loss(x, y, up)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            gn = torch.nn.utils.clip_grad_norm_(model.parameters(), a.clip)
            if torch.isfinite(gn):
                opt.step()  # a non-finite gradient skips the update rather than poisoning Adam
            step += 1
            lv, bv = loss.item(), bits.item()
            ema = bv if ema is None else 0.95 * ema + 0.05 * bv
            now = time.time()
            el = now - t0
            sps = el / max(1, step - start_step)
            left = [sps * (a.steps - step)] if a.steps is not None else []
            if budget_s is not None:
                left.append(budget_s - el)
            eta = fmt_time(min(left))
            line = (f'step {step}  loss {lv:.4f}  bits/token {bv:.3f} (avg {ema:.3f})  '
                    f'lr {lr:.2e}  {sps:.2f}s/step  ETA {eta}')
            logged = step % a.log_every == 0 or step == start_step + 1
            if tty:  # one line, rewritten in place; a log file gets a line per log entry
                sys.stderr.write(f'\r{line}   ')
                sys.stderr.flush()
            elif logged:
                print(line, file=sys.stderr, flush=True)
            if logged:
                log.write(json.dumps({'step': step, 'loss': lv, 'bits_per_token': bv, 'bits_avg': ema, 'lr': lr,
                                      'grad_norm': float(gn), 'elapsed_s': round(trained_s + now - last_save, 1),
                                      's_per_step': round(sps, 4)}) + '\n')
                log.flush()
            if now - last_save >= a.save_minutes * 60:
                trained_s += now - last_save
                last_save = now
                save_checkpoint(ck_path, state())
    finally:
        trained_s += time.time() - last_save
        save_checkpoint(ck_path, state())
        log.close()
        signal.signal(signal.SIGINT, prev)
        sys.stderr.write(f'{chr(10) if tty else ""}saved {ck_path} at step {step}\n')
    return 0


# ---------------------------------------------------------------- evaluation

@torch.no_grad()
def evaluate(model, data, batch=8, max_windows=256, device='cpu', train=None):
    """Held-out bits per token over fixed windows, and a unigram baseline with add-one
    smoothing counted on `train` (a Codes of the train split)."""
    items = data.fixed_windows(max_windows)
    nats, tokens = 0.0, 0
    counts = np.ones(model.bins)
    for t in (train.tracks if train else []):
        counts += np.bincount(t['x'].astype(np.intp), minlength=model.bins)
    logp_uni = np.log(counts / counts.sum())
    uni = 0.0
    for i in range(0, len(items), batch):
        x, y, up = data.batch(items[i: i + batch])
        logits = model(x.to(device), y.to(device), up.to(device) if up is not None else None)
        nats += torch.nn.functional.cross_entropy(logits.reshape(-1, model.bins).float(), x.to(device).reshape(-1),
                                                  reduction='sum').item()
        uni -= logp_uni[x.numpy().reshape(-1)].sum()
        tokens += x.numel()
    ln2 = math.log(2)
    return {'windows': len(items), 'tokens': tokens, 'bits_per_token': nats / tokens / ln2,
            'unigram_bits_per_token': uni / tokens / ln2}


def eval_main(argv):
    ap = argparse.ArgumentParser(prog='jukebox-train eval-prior', description='held-out bits per token of a prior')
    ap.add_argument('--data', required=True)
    ap.add_argument('--level', type=int, required=True)
    ap.add_argument('--checkpoint', required=True)
    ap.add_argument('--json', default=None)
    ap.add_argument('--batch', type=int, default=8)
    ap.add_argument('--max-windows', type=int, default=256)
    ap.add_argument('--device', default='cpu')
    a = ap.parse_args(argv)
    torch.set_num_threads(2)
    model, ck = load_checkpoint(a.checkpoint, a.device)
    if ck['hparams']['level'] != a.level:
        ap.error(f"{a.checkpoint} is a level {ck['hparams']['level']} model, not level {a.level}")
    manifest = load_manifest(a.data)
    args = (a.data, manifest)
    rest = (ck['hparams'], ck['vqvae_hparams'], ck['vocab'])
    test, train = Codes(*args, 'test', *rest), Codes(*args, 'train', *rest)
    if not test.tracks:
        raise SystemExit('no held-out windows (split == "test")')
    r = evaluate(model, test, a.batch, a.max_windows, a.device, train)
    r = {'level': a.level, 'checkpoint': a.checkpoint, 'step': ck['step'], **r}
    print(f"level {a.level} step {r['step']}: {r['bits_per_token']:.4f} bits/token over {r['tokens']} held-out tokens "
          f"({r['windows']} windows); unigram baseline {r['unigram_bits_per_token']:.4f}")
    if a.json:
        with open(a.json, 'w') as f:
            json.dump(r, f, indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
