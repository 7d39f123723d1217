"""Training, encoding and evaluation of the VQ-VAE (vqvae_model.py).

  train/jukebox-train vqvae --data DIR --out RUNDIR [--minutes M | --steps N] [--resume] [--device cuda]
                            [--no-restarts] [--smoke] [--batch B] [--sample-length T]
  train/jukebox-train codes --data DIR --checkpoint RUNDIR/checkpoint.pt     -> DIR/codes/<track>.npz (l0, l1, l2)
  train/jukebox-train eval-vqvae --data DIR --checkpoint ... [--json OUT]   held-out reconstruction + codebook use
"""
import argparse
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

from . import configs
from .common import REPO, load_manifest, save_checkpoint
from .progress import Progress
from .vqvae_model import VQVAE, export_vqvae, stft_mag
from .wavio import open_wav, read_mono


class Crops:
    """Random crops of the training tracks, chosen in proportion to their length, with the
    original's random stereo downmix as augmentation: mono = a * left + (1 - a) * right with
    a ~ U(0, 1), so the model sees every blend of the two channels."""

    def __init__(self, data, manifest, split, length, rng):
        self.tracks = [t for t in manifest['tracks'] if t['split'] == split and t['samples'] > length]
        if not self.tracks:
            raise SystemExit(f'no {split} track is longer than {length} samples in {data}')
        self.maps = [open_wav(os.path.join(data, t['audio']))[0] for t in self.tracks]
        w = np.array([len(m) - length for m in self.maps], dtype=np.float64)
        self.p = w / w.sum()
        self.length, self.rng = length, rng

    def batch(self, n):
        out = np.empty((n, self.length), dtype=np.float32)
        for i in range(n):
            m = self.maps[self.rng.choice(len(self.maps), p=self.p)]
            s = self.rng.integers(0, len(m) - self.length)
            x = m[s:s + self.length].astype(np.float32) / 32768.0
            a = self.rng.uniform() if x.shape[1] == 2 else 0.5
            out[i] = a * x[:, 0] + (1 - a) * x[:, -1]
        return torch.from_numpy(out)


def load_checkpoint(path, device='cpu'):
    """-> (model, checkpoint dict)."""
    ck = torch.load(path, map_location=device)
    model = VQVAE(ck['hparams'], ck['train_cfg']).to(device)
    model.load_state_dict(ck['model'])
    return model, ck


def main(argv):
    ap = argparse.ArgumentParser(prog='jukebox-train vqvae')
    ap.add_argument('--data', required=True)
    ap.add_argument('--out', required=True)
    ap.add_argument('--smoke', action='store_true', help='the tiny CI configuration')
    ap.add_argument('--minutes', type=float, help='time budget of this invocation')
    ap.add_argument('--steps', type=int, help='stop at this global step')
    ap.add_argument('--batch', type=int)
    ap.add_argument('--sample-length', type=int)
    ap.add_argument('--lr', type=float)
    ap.add_argument('--no-restarts', action='store_true', help='ablation: plain EMA codebooks')
    ap.add_argument('--device', default='cpu')
    ap.add_argument('--threads', type=int, default=0, help='CPU threads (0: torch default / all cores)')
    ap.add_argument('--resume', action='store_true')
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--save-minutes', type=float, default=5.0)
    ap.add_argument('--log-every', type=int, default=10)
    ap.add_argument('--snapshot-steps', type=int, nargs='*', default=[],
                    help='also keep checkpoint-STEP.pt at these steps (for ablations at equal steps)')
    a = ap.parse_args(argv)
    if a.minutes is None and a.steps is None:
        ap.error('give --minutes or --steps')
    if a.threads:
        torch.set_num_threads(a.threads)
    os.makedirs(a.out, exist_ok=True)
    ckpath = os.path.join(a.out, 'checkpoint.pt')
    manifest = load_manifest(a.data)
    if a.resume and os.path.exists(ckpath):
        model, ck = load_checkpoint(ckpath, a.device)
        h, cfg, step = ck['hparams'], ck['train_cfg'], ck['step']
    else:
        h = configs.vqvae_hparams(a.smoke)
        if manifest['sr'] != h['sr']:
            raise SystemExit(f"the data is at {manifest['sr']} Hz, the model at {h['sr']} Hz")
        cfg = dict(configs.VQVAE_TRAIN)
        if a.smoke:
            cfg.update(sample_length=2048, stft=[[256, 32, 128], [128, 16, 64]])
        torch.manual_seed(a.seed)
        model, ck, step = VQVAE(h, cfg).to(a.device), None, 0
    for k in ('batch', 'sample_length', 'lr'):
        if getattr(a, k) is not None:
            cfg[k] = getattr(a, k)
    cfg['restarts'] = not a.no_restarts
    model.set_restarts(cfg['restarts'])
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=cfg['lr'], betas=(0.9, 0.999))
    if ck is not None and 'opt' in ck:
        opt.load_state_dict(ck['opt'])
    rng = np.random.default_rng(a.seed + step)
    crops = Crops(a.data, manifest, 'train', cfg['sample_length'], rng)

    stop = {'now': False}
    signal.signal(signal.SIGINT, lambda *_: stop.update(now=True))
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))

    def save():
        save_checkpoint(ckpath, {'model': model.state_dict(), 'opt': opt.state_dict(), 'step': step, 'hparams': h,
                                 'train_cfg': cfg, 'seed': a.seed})

    t0 = last_save = time.time()
    budget = a.minutes * 60 if a.minutes else math.inf
    bar = Progress('vqvae', a.steps, budget, start=step)
    unlogged = None  # the last step's entry when it fell between log lines
    with open(os.path.join(a.out, 'log.jsonl'), 'a') as log:
        while not stop['now'] and (a.steps is None or step < a.steps) and time.time() - t0 < budget:
            x = crops.batch(cfg['batch']).to(a.device)
            loss, m = model(x, cfg)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 100.0)
            opt.step()
            step += 1
            L = model.levels
            entry = {'step': step, 'time': round(time.time() - t0, 2), 'loss': float(loss),
                     **{f'{k}_l{l}': round(v, 5) for l in range(L) for k, v in m[l].items()}}
            unlogged = entry
            if step % a.log_every == 0 or step == 1:
                log.write(json.dumps(entry) + '\n')
                log.flush()
                unlogged = None
            spec = '/'.join('%.2f' % m[l]['spec'] for l in range(L))
            ppl = '/'.join('%.0f' % m[l]['ppl'] for l in range(L))
            bar.update(step, f'loss {float(loss):.3f} spec {spec} ppl {ppl}')
            if step in a.snapshot_steps:
                save()
                shutil.copyfile(ckpath, os.path.join(a.out, f'checkpoint-{step}.pt'))
            if time.time() - last_save > a.save_minutes * 60:
                save()
                last_save = time.time()
        if unlogged is not None:
            log.write(json.dumps(unlogged) + '\n')
    save()
    bar.close(f'saved {ckpath} at step {step}')
    return 0


def codes_main(argv):
    ap = argparse.ArgumentParser(prog='jukebox-train codes')
    ap.add_argument('--data', required=True)
    ap.add_argument('--checkpoint', required=True)
    ap.add_argument('--device', default='cpu')
    ap.add_argument('--chunk-seconds', type=float, default=30.0)
    ap.add_argument('--backend', choices=['auto', 'engine', 'torch'], default='auto',
                    help="engine: the package's native VQ-VAE (fast on a CPU; needs `npm ci`); auto: engine when built")
    a = ap.parse_args(argv)
    model, ck = load_checkpoint(a.checkpoint, a.device)
    model.eval()
    manifest = load_manifest(a.data)
    os.makedirs(os.path.join(a.data, 'codes'), exist_ok=True)
    engine_ok = os.path.exists(os.path.join(REPO, 'dist', 'index.js')) and shutil.which('node')
    if a.backend == 'engine' or (a.backend == 'auto' and engine_ok and a.device == 'cpu'):
        return encode_with_engine(model, ck, a.data, manifest, a.chunk_seconds)
    top = model.hops[-1]
    chunk = int(a.chunk_seconds * manifest['sr']) // top * top
    bar = Progress('codes', len(manifest['tracks']))
    for i, t in enumerate(manifest['tracks']):
        out = os.path.join(a.data, 'codes', t['id'] + '.npz')
        x, _ = read_mono(os.path.join(a.data, t['audio']))
        x = x[:len(x) // top * top]
        # chunks are a multiple of the top hop, so codes line up; the convolutions see zero
        # padding at chunk edges (a few codes per 30 s differ from one long pass)
        parts = [[] for _ in range(model.levels)]
        for s in range(0, len(x), chunk):
            with torch.no_grad():
                zs = model.encode(torch.from_numpy(x[s:s + chunk])[None].to(a.device))
            for l, z in enumerate(zs):
                parts[l].append(z[0].cpu().numpy().astype(np.int16))
        np.savez(out + '.tmp.npz', **{f'l{l}': np.concatenate(p) for l, p in enumerate(parts)})
        os.replace(out + '.tmp.npz', out)
        bar.update(i + 1, t['id'])
    bar.close(f"encoded {len(manifest['tracks'])} tracks to {os.path.join(a.data, 'codes')}")
    return 0


def encode_with_engine(model, ck, data, manifest, chunk_seconds):
    """Exports the VQ-VAE and encodes every track with engine_encode.mjs (the native engine)."""
    with tempfile.TemporaryDirectory() as tmp:
        vq = os.path.join(tmp, 'vqvae.safetensors')
        export_vqvae(model, ck['hparams'], vq)
        args = [vq]
        for t in manifest['tracks']:
            args += [os.path.join(data, t['audio']), os.path.join(data, 'codes', t['id'] + '.npz')]
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'engine_encode.mjs')
        env = {**os.environ, 'JUKEBOX_ENCODE_CHUNK_SECONDS': str(chunk_seconds)}
        bar = Progress('codes (engine)', len(manifest['tracks']))
        with subprocess.Popen(['node', script, *args], stdout=subprocess.PIPE, text=True, env=env) as p:
            for i, line in enumerate(p.stdout):
                bar.update(i + 1, os.path.basename(line.strip()))
        if p.returncode != 0:
            raise SystemExit(f'engine encoding failed (exit {p.returncode})')
    bar.close(f"encoded {len(manifest['tracks'])} tracks to {os.path.join(data, 'codes')} with the engine")
    return 0


def spectral_convergence_db(x, y, n_fft=2048, hop=512):
    """20 log10(||S_x - S_y||_F / ||S_x||_F) on STFT magnitudes (Hann window n_fft, hop)."""
    a, b = stft_mag(x, n_fft, hop, n_fft), stft_mag(y, n_fft, hop, n_fft)
    return float(20 * torch.log10(torch.linalg.norm(a - b) / torch.linalg.norm(a)))


def mr_stft_distance(x, y, resolutions=((2048, 512), (1024, 256), (512, 128), (256, 64))):
    """Mean over resolutions of spectral convergence (linear) + mean |log S_x - log S_y|."""
    d = 0.0
    for n_fft, hop in resolutions:
        a, b = stft_mag(x, n_fft, hop, n_fft), stft_mag(y, n_fft, hop, n_fft)
        d += float(torch.linalg.norm(a - b) / torch.linalg.norm(a)) + float((torch.log(a + 1e-5) - torch.log(b + 1e-5)).abs().mean())
    return d / len(resolutions)


def evaluate(model, data, manifest, seconds=20.0, device='cpu', log=None):
    """Held-out tracks: `seconds` of each from 10 s in (or a quarter in, for short tracks), every level."""
    model.eval()
    sr = manifest['sr']
    top = model.hops[-1]
    tests = [t for t in manifest['tracks'] if t['split'] == 'test']
    n = int(seconds * sr) // top * top
    per = {l: {'sc_db': [], 'mrstft': []} for l in range(model.levels)}
    counts = [np.zeros(model.h['l_bins'], dtype=np.int64) for _ in range(model.levels)]
    for t in tests:
        x, _ = read_mono(os.path.join(data, t['audio']), start=min(10 * sr, t['samples'] // 4), length=n)
        x = x[:len(x) // top * top]
        if len(x) < top * 16:
            continue
        xt = torch.from_numpy(x)[None].to(device)
        zs = model.encode(xt)
        for l in range(model.levels):
            y = model.decode(zs[l], l)
            per[l]['sc_db'].append(spectral_convergence_db(xt[0], y[0]))
            per[l]['mrstft'].append(mr_stft_distance(xt[0], y[0]))
            counts[l] += np.bincount(zs[l][0].cpu().numpy(), minlength=model.h['l_bins'])
        if log:
            log(t['id'])
    out = {'tracks': len(tests), 'seconds_per_track': seconds, 'levels': []}
    for l in range(model.levels):
        p = counts[l] / max(1, counts[l].sum())
        nz = p[p > 0]
        out['levels'].append({
            'level': l, 'hop': model.hops[l],
            'spectral_convergence_db': round(float(np.mean(per[l]['sc_db'])), 2),
            'mr_stft_distance': round(float(np.mean(per[l]['mrstft'])), 3),
            'perplexity': round(float(np.exp(-(nz * np.log(nz)).sum())), 1),
            'dead_codes': int((counts[l] == 0).sum()), 'codebook': int(model.h['l_bins']),
        })
    return out


PAPER_SC_DB = {0: -23.0, 1: -12.4, 2: -8.3}  # Jukebox paper, 44.1 kHz, hops 8/32/128


def print_vqvae_table(r, file=sys.stdout):
    print('level  hop  spectral conv. (dB)  paper (dB)  MR-STFT dist.  perplexity  dead codes', file=file)
    for e in r['levels']:
        print(f"{e['level']:>5}  {e['hop']:>3}  {e['spectral_convergence_db']:>19.2f}  {PAPER_SC_DB.get(e['level'], float('nan')):>10.1f}"
              f"  {e['mr_stft_distance']:>13.3f}  {e['perplexity']:>10.1f}  {e['dead_codes']:>5}/{e['codebook']}", file=file)


def eval_main(argv):
    ap = argparse.ArgumentParser(prog='jukebox-train eval-vqvae')
    ap.add_argument('--data', required=True)
    ap.add_argument('--checkpoint', required=True)
    ap.add_argument('--seconds', type=float, default=20.0)
    ap.add_argument('--device', default='cpu')
    ap.add_argument('--json')
    a = ap.parse_args(argv)
    model, ck = load_checkpoint(a.checkpoint, a.device)
    r = evaluate(model, a.data, load_manifest(a.data), a.seconds, a.device)
    r['step'] = ck['step']
    print_vqvae_table(r)
    if a.json:
        with open(a.json, 'w') as f:
            json.dump(r, f, indent=1)
    return 0
