"""Prior tests: the module is the original's architecture (fixtures made by openai/jukebox),
the engine computes the same logits from our export, and training / resume work.

  PYTHONPATH=train /usr/bin/python3 -m unittest discover -s train/tests -p 'test_prior*.py'
"""
import json
import os
import pickle
import subprocess
import tempfile
import unittest

import numpy as np
import torch

from jukebox_train import configs
from jukebox_train.prior import Prior, export_prior
from jukebox_train import train_prior
from tests.engine import engine_missing

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
FIX = os.path.join(ROOT, 'test', 'fixtures', 'priors')
torch.set_num_threads(2)


class _Opaque(dict):
    """Stands in for any class the fixture's `hps` pickles (only `model` is used)."""

    def __init__(self, *a, **k):
        super().__init__()

    def __setstate__(self, s):
        pass


class _Unpickler(pickle.Unpickler):
    def find_class(self, mod, name):
        try:
            return super().find_class(mod, name)
        except Exception:
            return _Opaque


class _PickleModule:
    Unpickler = _Unpickler
    load = pickle.load


def read_json(path):
    with open(path) as f:
        return json.load(f)


def read_log(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


def fixture(name, fname):
    info = read_json(os.path.join(FIX, 'manifest.json'))['files'][f'{name}/{fname}']
    dt = np.int32 if info['dtype'] == 'int32' else np.float32
    return torch.from_numpy(np.fromfile(os.path.join(FIX, name, fname), dtype=dt).reshape(info['shape']).copy())


class FixtureTest(unittest.TestCase):
    """Original checkpoints load key-for-key and give the original's numbers."""

    def check(self, name):
        entry = read_json(os.path.join(FIX, 'manifest.json'))['priors'][name]
        h = configs.full(entry['effective_hparams'])
        # The fixtures' VQ-VAE: the official hops 8/32/128 with l_bins from the manifest.
        vq = {'levels': 3, 'downs_t': [3, 2, 2], 'strides_t': [2, 2, 2], 'l_bins': entry['l_bins'], 'sr': h['sr']}
        model = Prior(h, vq).eval()
        ck = torch.load(os.path.join(FIX, name, 'prior.zip.pth.tar'), map_location='cpu', pickle_module=_PickleModule)
        model.load_state_dict(ck['model'], strict=True)
        z, y = fixture(name, 'z.i32.bin').long(), fixture(name, 'y.i32.bin').long()
        zc = fixture(name, 'z_cond.i32.bin').long() if model.upsampler else None
        with torch.no_grad():
            y_cond, x_cond = model.conditioning(y, zc)
            logits = model(z, y, zc)
        diffs = {'y_cond': (y_cond - fixture(name, 'y_cond.f32.bin')).abs().max().item(),
                 'x_cond': (x_cond - fixture(name, 'x_cond.f32.bin')).abs().max().item(),
                 'logits': (logits - fixture(name, 'logits_forward.f32.bin')).abs().max().item()}
        print(f'\n{name}: max abs diff vs original {diffs}')
        for k, d in diffs.items():
            self.assertLess(d, 1e-4, k)
        bits = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), z.reshape(-1)).item() / np.log(2)
        self.assertAlmostEqual(bits, entry['forward']['bpd'], places=3)

    def test_top_prior_5b_like(self):
        self.check('prior_5b_like')

    def test_upsampler_like(self):
        self.check('upsampler_like')


NODE_SCRIPT = r"""
import { readFileSync, writeFileSync } from 'node:fs';
const { loadPrior } = await import(process.argv[2]);
const [model, dir, n] = [process.argv[3], process.argv[4], Number(process.argv[5])];
const i32 = (f) => { const b = readFileSync(`${dir}/${f}`); return new Int32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length)); };
const prior = await loadPrior(model);
const y = i32('y.bin');
let { yCond, xCond } = prior.labels(y, n);
if (prior.structure.upsampler) xCond = await prior.condition(i32('up.bin'), n);
const out = await prior.forward({ tokens: i32('x.bin'), n, yCond, xCond: xCond ?? undefined });
writeFileSync(`${dir}/logits.bin`, Buffer.from(out.logits.buffer));
writeFileSync(`${dir}/x_cond.bin`, Buffer.from(xCond.buffer));
prior.dispose();
"""


def randomize(model, seed):
    """Weights far from the small init, so the comparison exercises every term."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(('ln_0.weight', 'ln_1.weight', 'ln.weight')):
                p.copy_(1 + 0.2 * torch.randn(p.shape, generator=g))
            elif p.dim() >= 2 and not name.endswith(('emb.weight', 'pos_emb')):
                p.copy_(torch.randn(p.shape, generator=g) / np.sqrt(p.shape[0] if 'c_' in name else np.prod(p.shape[1:])))
            else:
                p.copy_(0.3 * torch.randn(p.shape, generator=g))


def random_inputs(model, n, seed):
    g = np.random.default_rng(seed)
    h, T = model.h, model.n_ctx
    x = g.integers(0, model.bins, size=(n, T))
    sr = h['sr']
    rows = []
    for _ in range(n):
        # a song length the timing labels cover: at least min_duration and one window
        lo = max(int(T * model.hop * 1.5), int((h['min_duration'] or 0) * sr))
        total = int(g.integers(lo, int(300 * sr)))
        genres = list(g.integers(0, h['y_bins'][0], size=h['max_bow_genre_size']))
        genres[-1] = -1 if h['max_bow_genre_size'] > 1 else genres[-1]
        rows.append([total, int(g.integers(0, total)), T * model.hop, int(g.integers(0, h['y_bins'][1])), *genres])
    up = g.integers(0, model.bins, size=(n, T // model.cond_downsample)) if model.upsampler else None
    return x, np.array(rows), up


@unittest.skipIf(engine_missing(), engine_missing() or '')
class EngineParityTest(unittest.TestCase):
    """Our export, run by the engine, gives our logits."""

    def run_engine(self, path, x, y, up, tmp):
        for name, a in (('x.bin', x), ('y.bin', y), ('up.bin', up)):
            if a is not None:
                a.astype('<i4').tofile(os.path.join(tmp, name))
        script = os.path.join(tmp, 'run.mjs')
        with open(script, 'w') as f:
            f.write(NODE_SCRIPT)
        r = subprocess.run(['node', script, 'file://' + os.path.join(ROOT, 'dist', 'index.js'), path, tmp, str(len(x))],
                           capture_output=True, text=True, timeout=600)
        self.assertEqual(r.returncode, 0, f'engine failed:\n{r.stderr[-3000:]}')
        logits = np.fromfile(os.path.join(tmp, 'logits.bin'), dtype='<f4').reshape(len(x), x.shape[1], -1)
        x_cond = np.fromfile(os.path.join(tmp, 'x_cond.bin'), dtype='<f4').reshape(len(x), x.shape[1], -1)
        return logits, x_cond

    def check(self, level, smoke, dtype=torch.float32, n=2):
        vq = configs.vqvae_hparams(smoke)
        h = configs.prior_hparams(level, 5, 7, vq, smoke)
        torch.manual_seed(level)
        model = Prior(h, vq).eval()
        randomize(model, level + 10 * smoke)
        x, y, up = random_inputs(model, n, level)
        vocab = {'version': 'v2', 'artists': {'unknown': 0, 'a': 1}, 'genres': {'unknown': 0, 'rock': 1}}
        with tempfile.TemporaryDirectory() as tmp:
            path = export_prior(model, h, vq, vocab, os.path.join(tmp, 'prior.safetensors'), dtype=dtype)
            got, got_cond = self.run_engine(path, x, y, up, tmp)
        if dtype != torch.float32:  # compare with the weights the file holds
            with torch.no_grad():
                for p in model.parameters():
                    if p.dim() >= 2:
                        p.copy_(p.to(dtype).float())
        with torch.no_grad():
            t = lambda a: torch.from_numpy(a).long() if a is not None else None
            want = model(t(x), t(y), t(up)).numpy()
            want_cond = model.conditioning(t(y), t(up))[1].numpy()
        d, dc = np.abs(got - want).max(), np.abs(got_cond - want_cond).max()
        kind = 'top' if not model.upsampler else f'upsampler'
        print(f'\nengine vs torch, level {level} {kind} {"smoke" if smoke else "default"} {dtype}: '
              f'max abs logit diff {d:.3g} (logit scale {np.abs(want).max():.3g}), x_cond diff {dc:.3g}')
        self.assertLess(dc, 1e-4)
        self.assertLess(d, 1e-4)

    def test_smoke_top(self):
        self.check(2, True)

    def test_smoke_upsampler(self):
        self.check(1, True)

    def test_default_top(self):
        self.check(2, False)

    def test_default_upsampler_level0(self):
        self.check(0, False)

    def test_default_upsampler_level1_fp16(self):
        self.check(1, False, torch.float16)


def synthetic_codes(out, vq, tracks=5, seconds=6.0, pattern=False, seed=0):
    """DIR/manifest.json + DIR/codes/<id>.npz as the `codes` command writes them. pattern:
    each level's codes cycle 0..7 (trivially learnable)."""
    rng = np.random.default_rng(seed)
    hops = train_prior.hop_lengths(vq)
    os.makedirs(os.path.join(out, 'codes'), exist_ok=True)
    rows = []
    for i in range(tracks):
        n = int(seconds * vq['sr'])
        z = {}
        for l, hop in enumerate(hops):
            k = -(-n // hop)
            z[f'l{l}'] = (np.arange(k) % 8 if pattern else rng.integers(0, vq['l_bins'], size=k)).astype(np.int16)
        np.savez(os.path.join(out, 'codes', f't{i}.npz'), **z)
        rows.append({'id': f't{i}', 'split': 'test' if i == tracks - 1 else 'train', 'artist': ['x_one', 'y_two'][i % 2],
                     'genre': ['Folk Rock', 'jazz'][i // 2 % 2], 'samples': n, 'duration': seconds})
    with open(os.path.join(out, 'manifest.json'), 'w') as f:
        json.dump({'sr': vq['sr'], 'tracks': rows, 'artists': ['x_one', 'y_two'], 'genres': ['Folk Rock', 'jazz']}, f)


class TrainTest(unittest.TestCase):
    def test_train_resume_eval(self):
        vq = configs.vqvae_hparams(smoke=True)
        with tempfile.TemporaryDirectory() as tmp:
            data, run = os.path.join(tmp, 'data'), os.path.join(tmp, 'run')
            synthetic_codes(data, vq)
            for level in (2, 1):
                rd = f'{run}{level}'
                base = ['--data', data, '--level', str(level), '--out', rd, '--smoke', '--batch', '2', '--log-every', '1']
                train_prior.main(base + ['--steps', '3'])
                ck = torch.load(os.path.join(rd, 'checkpoint.pt'))
                self.assertEqual(ck['step'], 3)
                train_prior.main(base + ['--steps', '5', '--resume'])
                ck = torch.load(os.path.join(rd, 'checkpoint.pt'))
                self.assertEqual(ck['step'], 5)
                # "Folk Rock" is a bag of two words: two genre slots, as the engine looks it up.
                self.assertEqual(ck['hparams']['max_bow_genre_size'], 2)
                self.assertEqual(ck['hparams']['y_bins'], [4, 3])
                log = read_log(os.path.join(rd, 'log.jsonl'))
                self.assertEqual([r['step'] for r in log], [1, 2, 3, 4, 5])
                self.assertTrue(all(np.isfinite(r['loss']) for r in log))
                out = os.path.join(tmp, f'eval{level}.json')
                train_prior.eval_main(['--data', data, '--level', str(level), '--checkpoint',
                                       os.path.join(rd, 'checkpoint.pt'), '--json', out])
                r = read_json(out)
                self.assertGreater(r['tokens'], 0)
                # random codes: both near log2(l_bins) = 5 bits
                self.assertLess(abs(r['unigram_bits_per_token'] - 5), 0.2)
                self.assertTrue(np.isfinite(r['bits_per_token']))

    def test_learns_pattern(self):
        vq = configs.vqvae_hparams(smoke=True)
        with tempfile.TemporaryDirectory() as tmp:
            data, rd = os.path.join(tmp, 'data'), os.path.join(tmp, 'run')
            synthetic_codes(data, vq, pattern=True)
            train_prior.main(['--data', data, '--level', '2', '--out', rd, '--smoke', '--batch', '4', '--steps', '30',
                              '--lr', '3e-3', '--warmup', '5', '--log-every', '1'])
            bits = [r['bits_per_token'] for r in read_log(os.path.join(rd, 'log.jsonl'))]
            print(f'\npattern: bits/token {bits[0]:.2f} -> {bits[-1]:.2f} over 30 steps')
            self.assertTrue(all(np.isfinite(bits)))
            # 5 bits (uniform over 32 codes) down to the pattern's unigram 3 bits; using the
            # previous token (-> 0 bits) takes ~200 steps of this tiny model.
            self.assertLess(np.mean(bits[-5:]), np.mean(bits[:5]) - 1.0)


if __name__ == '__main__':
    unittest.main()
