"""The training VQ-VAE is the original's architecture: loaded with a checkpoint written by the
ORIGINAL code (test/fixtures/vqvae), it reproduces that code's codes exactly and its decoded
audio to float precision. Then a short training run: losses finite, EMA/restarts keep codes alive,
checkpoint/resume. And engine parity: a briefly trained random model, exported with export_vqvae,
run by the engine (the package's native VQ-VAE, through Node): the same codes and audio."""
import copy
import json
import os
import subprocess
import tempfile
import unittest

import numpy as np
import torch

from jukebox_train import configs
from jukebox_train.safetensors_io import load_file
from jukebox_train.vqvae_model import VQVAE, engine_tensors, export_vqvae
from tests.engine import engine_missing

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIX = os.path.join(REPO, 'test', 'fixtures')


def arr(rel, dtype):
    m = json.load(open(os.path.join(FIX, 'manifest.json')))['files'][rel]
    return np.fromfile(os.path.join(FIX, rel), dtype=dtype).reshape(m['shape'])


class OriginalFixture(unittest.TestCase):
    def test_codes_and_decode_match_the_original(self):
        h = configs.full(json.load(open(os.path.join(FIX, 'manifest.json')))['vqvae']['hparams'])
        model = VQVAE(h).eval()
        ck = torch.load(os.path.join(FIX, 'vqvae', 'vqvae.zip.pth.tar'), map_location='cpu')
        missing, unexpected = model.load_state_dict(ck['model'], strict=False)
        self.assertEqual([k for k in missing if not k.endswith(('k_sum', 'k_elem', 'initialised'))], [])
        self.assertEqual([k for k in unexpected if not k.endswith(('k_sum', 'k_elem', 'init', 'x_l', 'x_h'))], [])
        x = torch.from_numpy(arr('input/waveform.f32.bin', np.float32))[None]
        codes = model.encode(x)
        for l in range(3):
            ref = arr(f'vqvae/codes_l{l}.i32.bin', np.int32)
            self.assertTrue(np.array_equal(codes[l].numpy(), ref), f'level {l} codes differ')
            y = model.decode(torch.from_numpy(ref.astype(np.int64)), l)
            diff = np.abs(y.numpy() - arr(f'vqvae/decode_l{l}.f32.bin', np.float32)[..., 0]).max()
            self.assertLess(diff, 1e-4, f'level {l} decode differs by {diff}')


class Training(unittest.TestCase):
    def test_smoke_train_and_resume(self):
        from jukebox_train import synthetic, train_vqvae_run
        with tempfile.TemporaryDirectory() as d:
            synthetic.build(os.path.join(d, 'data'), tracks=4, seconds=2.0)
            run = os.path.join(d, 'run')
            args = ['--data', os.path.join(d, 'data'), '--out', run, '--smoke', '--steps', '3', '--batch', '2']
            self.assertEqual(train_vqvae_run.main(args), 0)
            self.assertEqual(train_vqvae_run.main(args[:-3] + ['5', '--batch', '2', '--resume']), 0)
            log = [json.loads(l) for l in open(os.path.join(run, 'log.jsonl'))]
            self.assertEqual(log[-1]['step'], 5)
            self.assertTrue(all(np.isfinite(e['loss']) for e in log))


def tones(n, t, sr, seed):
    """Tones, a chirp and noise: every code region gets exercised."""
    g = np.random.default_rng(seed)
    tt = np.arange(t) / sr
    x = [0.3 * np.sin(2 * np.pi * g.uniform(100, 2000) * tt + 400 * tt ** 2) + 0.05 * g.standard_normal(t)
         for _ in range(n)]
    return np.stack(x).astype(np.float32)


# Codes may differ only where the two candidates are (nearly) equally near the encoder output z:
# |d(z, engine's code) - d(z, our code)| < NEAR_TIE * (|z|^2 + |k|^2), d the squared L2 distance
# as both compute it (|z|^2 - 2 z.k + |k|^2 in float32). Relative, because the float32 rounding
# of d, and of z after the encoder's ~30 convolutions, scales with those magnitudes (20 to 2000
# here). 1e-6 is a few float32 ulps; the mismatches seen (default model, top level, 0-2 of 128
# codes depending on PyTorch's thread count) were at 0.6e-7 to 1.7e-7 (absolute gaps up to 3.7e-4).
# On an AVX-512 machine (PyTorch's oneDNN then sums in another order) one smoke fp16 top-level
# code differed at 1.9e-6 (absolute gap 7.9e-6), before and after this package's changes: the
# encoder outputs themselves differ by that much, so the bound is 4e-6, still ~30 ulps.
NEAR_TIE = 4e-6
DECODE_TOL = 1e-4  # fp32 export: engine decode vs PyTorch decode, max |diff|
# fp16 export: the engine's decode vs PyTorch's decode with the same fp16-rounded weights
# (the engine computes in float32 from the stored halves), and vs the fp32 model (rounding).
DECODE_TOL_F16 = 1e-4
DECODE_TOL_F16_VS_F32 = 2e-3


@unittest.skipIf(engine_missing(), engine_missing() or '')
class EngineParity(unittest.TestCase):
    """A random model after a couple of training steps (codebooks initialised from data, EMA,
    restarts), exported and run by the engine: the same codes at every level, the same audio."""

    def node(self, model_path, tmp, n, t, prefix):
        r = subprocess.run(['node', os.path.join(REPO, 'train', 'tests', 'engine_vqvae_model.mjs'),
                            model_path, tmp, str(n), str(t), prefix], capture_output=True, text=True, timeout=300)
        self.assertEqual(r.returncode, 0, f'engine failed:\n{r.stderr[-3000:]}')

    def compare_codes(self, model, x, l, ours, engine, label):
        """Mismatches allowed only at near-ties; returns their count (and largest gap) for the log."""
        bad = np.argwhere(engine != ours)
        if len(bad):
            with torch.no_grad():
                z = model.encoders[l](x[:, None, :]).permute(0, 2, 1).reshape(-1, model.h['emb_width'])
                k = model.bottleneck.level_blocks[l].k
                d = ((z * z).sum(1, keepdim=True) - 2 * z @ k.t() + (k * k).sum(1)[None]).numpy()
            rows = bad[:, 0] * ours.shape[1] + bad[:, 1]
            ke, ko = engine.reshape(-1)[rows], ours.reshape(-1)[rows]
            norms = (z * z).sum(1).numpy()[rows] + np.maximum(*((k * k).sum(1).numpy()[c] for c in (ke, ko)))
            gap = np.abs(d[rows, ke] - d[rows, ko])
            rel = (gap / norms).max()
            self.assertLess(rel, NEAR_TIE, f'{label} level {l}: {len(bad)} codes differ, not near-ties '
                                           f'(gaps {gap.tolist()})')
            return f'{len(bad)} (near-ties: gap max {gap.max():.1e}, relative {rel:.1e})'
        return '0'

    def check(self, smoke, steps):
        h = configs.vqvae_hparams(smoke)
        torch.manual_seed(1)
        cfg = dict(configs.VQVAE_TRAIN)
        model = VQVAE(h, cfg)
        n, t = 2, 4096 if smoke else 8192
        x = torch.from_numpy(tones(n, t, h['sr'], 0))
        model.train()
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        for _ in range(steps):
            loss, _ = model(x, cfg)
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        self.assertTrue(all(bool(cb.initialised) for cb in model.bottleneck.level_blocks))
        # Two steps leave the upper codebooks behind the moved encoders (a handful of codes in
        # use), and a random encoder's output is nearly constant (at the default's top level all
        # outputs lie within ~1e-4 squared distance of each other at |z|^2 ~ 26, below float32's
        # resolution of the distance). So: standardise each level's output per channel (scale
        # and shift its last conv) and re-seed each codebook from outputs on other clips, enough
        # of them for distinct codes: codes then spread over the codebook with real margins.
        with torch.no_grad():
            xr = torch.from_numpy(tones(8, t, h['sr'], 1))[:, None, :]
            for l, cb in enumerate(model.bottleneck.level_blocks):
                last = model.encoders[l].level_blocks[-1].model[-1]
                z = model.encoders[l](xr).permute(0, 2, 1).reshape(-1, h['emb_width'])
                mu, scale = z.mean(0), 1 / z.std(0)
                last.weight.mul_(scale[:, None, None])
                last.bias.sub_(mu).mul_(scale)
                z = model.encoders[l](xr).permute(0, 2, 1).reshape(-1, h['emb_width'])
                self.assertGreaterEqual(z.shape[0], cb.bins)
                cb.k.copy_(cb._random_rows(z, cb.bins))
        # the same model with its weights rounded to fp16, as the engine reads an fp16 export
        model16 = copy.deepcopy(model)
        with torch.no_grad():
            for p in engine_tensors(model16).values():
                if p.is_floating_point():
                    p.copy_(p.half().float())
        name = 'smoke' if smoke else 'default'
        with tempfile.TemporaryDirectory() as tmp:
            p32, p16 = os.path.join(tmp, 'vqvae.safetensors'), os.path.join(tmp, 'vqvae16.safetensors')
            export_vqvae(model, h, p32, source={'format': 'test'})
            export_vqvae(model, h, p16, dtype=torch.float16, source={'format': 'test'})
            tensors, meta = load_file(p32)
            self.assertEqual(set(tensors), set(engine_tensors(model)))
            self.assertEqual(meta['jukebox.kind'], 'vqvae')
            self.assertEqual(json.loads(meta['jukebox.hparams']), configs.structure_of('vqvae', h))
            self.assertNotIn('n_ctx', json.loads(meta['jukebox.hparams']))  # a VQ-VAE stores its own structure only
            x.numpy().tofile(os.path.join(tmp, 'x.f32'))
            ours, ours16 = model.encode(x), model16.encode(x)
            for l, z in enumerate(ours):
                z.numpy().astype('<i4').tofile(os.path.join(tmp, f'z_l{l}.i32'))
            self.node(p32, tmp, n, t, '')
            self.node(p16, tmp, n, t, 'f16_')
            for l, z in enumerate(ours):
                zn = z.numpy()
                read = lambda f, dt, shape: np.fromfile(os.path.join(tmp, f), dt).reshape(shape)
                y = model.decode(z, l).numpy()
                y16 = model16.decode(z, l).numpy()
                mis = self.compare_codes(model, x, l, zn, read(f'codes_l{l}.i32', '<i4', zn.shape), name)
                mis16 = self.compare_codes(model16, x, l, ours16[l].numpy(),
                                           read(f'f16_codes_l{l}.i32', '<i4', zn.shape), name + ' fp16')
                d = np.abs(read(f'decode_l{l}.f32', '<f4', y.shape) - y).max()
                e16 = read(f'f16_decode_l{l}.f32', '<f4', y.shape)
                d16, d16_32 = np.abs(e16 - y16).max(), np.abs(e16 - y).max()
                print(f'engine {name} level {l}: {zn.size} codes ({len(np.unique(zn))} distinct), '
                      f'mismatches fp32 {mis} fp16 {mis16}; decode max|diff| fp32 {d:.2e}, '
                      f'fp16 {d16:.2e} (vs fp32 model {d16_32:.2e}; rms {np.sqrt((y ** 2).mean()):.3f})')
                self.assertLess(d, DECODE_TOL, f'{name} level {l} decode')
                self.assertLess(d16, DECODE_TOL_F16, f'{name} level {l} fp16 decode')
                self.assertLess(d16_32, DECODE_TOL_F16_VS_F32, f'{name} level {l} fp16 decode vs fp32')

    def test_smoke(self):
        self.check(True, 2)

    def test_default(self):
        self.check(False, 2)


if __name__ == '__main__':
    unittest.main()
