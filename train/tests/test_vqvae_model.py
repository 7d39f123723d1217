"""The training VQ-VAE is the original's architecture: loaded with a checkpoint written by the
ORIGINAL code (test/fixtures/vqvae), it reproduces that code's codes exactly and its decoded
audio to float precision. Then a short training run: losses finite, EMA/restarts keep codes alive,
checkpoint/resume."""
import json
import os
import tempfile
import unittest

import numpy as np
import torch

from jukebox_train import configs
from jukebox_train.vqvae_model import VQVAE

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


if __name__ == '__main__':
    unittest.main()
