"""Baseline for BENCHMARKS.md: the official-size VQ-VAE decoders as PyTorch modules (the
same layer stack as jukebox/vqvae/encdec.py, written here with torch.nn), random weights,
timed on this machine's CPU with torch's own conv kernels (oneDNN). Run:

    python3 bench/torch_baseline.py          # Debian's python3-torch (1.13, CPU)

It measures what the original implementation's decode costs here, to compare with
`npm run bench` on the same machine.
"""
import os
import time

import torch
import torch.nn as nn

SECONDS = float(os.environ.get("BENCH_SECONDS", "10"))
torch.set_num_threads(int(os.environ.get("JUKEBOX_THREADS", os.cpu_count())))
torch.manual_seed(0)


class Res(nn.Module):
    def __init__(self, w, dil):
        super().__init__()
        self.model = nn.Sequential(nn.ReLU(), nn.Conv1d(w, w, 3, 1, dil, dil), nn.ReLU(), nn.Conv1d(w, w, 1))

    def forward(self, x):
        return x + self.model(x)


def decoder(level, emb=64, downs=(3, 2, 2), width=32, depth=4, mult=(2, 1, 1), growth=3):
    w, d = width * mult[level], depth * mult[level]
    layers = []
    for b in range(level, -1, -1):
        layers.append(nn.Conv1d(emb, w, 3, 1, 1))
        for i in range(downs[b]):
            layers += [Res(w, growth ** j) for j in reversed(range(d))]
            layers.append(nn.ConvTranspose1d(w, emb if i == downs[b] - 1 else w, 4, 2, 1))
    layers.append(nn.Conv1d(emb, 1, 3, 1, 1))
    return nn.Sequential(*layers).eval()


def main():
    hops = [8, 32, 128]
    n = int(SECONDS * 44100) // 128 * 128
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {SECONDS} s of audio, batch 1")
    with torch.no_grad():
        for level in range(3):
            dec = decoder(level)
            x = torch.randn(1, 64, n // hops[level])
            dec(x)  # warm-up
            best = 1e30
            for _ in range(2):
                t0 = time.perf_counter()
                y = dec(x)
                best = min(best, time.perf_counter() - t0)
            assert y.shape[-1] == n
            print(f"  decode level {level}: {best:.3f} s ({SECONDS / best:.1f}x real time)")


if __name__ == "__main__":
    main()
