"""The hierarchical VQ-VAE in PyTorch, with the original's state-dict names so that an export is
a plain copy of tensors (the engine's lib/vqvae/layout.ts describes the same modules).

Per level L: an encoder (L+1 downsampling conv blocks from the raw audio, each a strided conv and
a dilated Resnet1D, ending in a conv to emb_width), a codebook, and a decoder (the mirror
image: conv in, then per block a Resnet1D with reversed dilations and a transposed conv, then
a conv to one channel). Every level reconstructs the audio from its own codes.

Training follows the Jukebox recipe: EMA codebook updates with random restarts of codes whose
usage falls below a threshold, a straight-through estimator, commitment loss, and a
reconstruction loss of L2 + a small L-inf term plus a multi-resolution STFT loss."""
import json

import torch
import torch.nn as nn
import torch.nn.functional as F

from .configs import structure_of
from .safetensors_io import save_file


class ResBlock(nn.Module):
    """x + scale * conv1x1(relu(conv3_dilated(relu(x)))); `model.1` / `model.3` are the convs."""

    def __init__(self, width, n_state, dilation, scale=1.0):
        super().__init__()
        self.model = nn.Sequential(nn.ReLU(), nn.Conv1d(width, n_state, 3, 1, dilation, dilation), nn.ReLU(),
                                   nn.Conv1d(n_state, width, 1))
        self.scale = scale

    def forward(self, x):
        return x + self.scale * self.model(x)


class Resnet1D(nn.Module):
    def __init__(self, width, depth, m_conv, growth, cycle, reverse=False):
        super().__init__()
        dil = [growth ** (d if cycle is None else d % cycle) for d in range(depth)]
        if reverse:
            dil = dil[::-1]
        self.model = nn.Sequential(*[ResBlock(width, int(m_conv * width), d) for d in dil])

    def forward(self, x):
        return self.model(x)


def _res(h, width, depth, reverse=False):
    return Resnet1D(width, depth, h['m_conv'], h['dilation_growth_rate'], h['dilation_cycle'], reverse)


class EncoderBlock(nn.Module):
    """`down` x (strided conv k=2s, Resnet1D), then a k3 conv to emb_width."""

    def __init__(self, h, cin, width, depth, down, stride):
        super().__init__()
        layers = []
        for i in range(down):
            layers.append(nn.Sequential(nn.Conv1d(cin if i == 0 else width, width, stride * 2, stride, stride // 2),
                                        _res(h, width, depth)))
        layers.append(nn.Conv1d(width, h['emb_width'], 3, 1, 1))
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)


class DecoderBlock(nn.Module):
    """A k3 conv from emb_width, then `down` x (Resnet1D with reversed dilations, transposed conv)."""

    def __init__(self, h, width, depth, down, stride):
        super().__init__()
        layers = [nn.Conv1d(h['emb_width'], width, 3, 1, 1)]
        for i in range(down):
            cout = h['emb_width'] if i == down - 1 else width
            layers.append(nn.Sequential(_res(h, width, depth, reverse=h['vqvae_reverse_decoder_dilation']),
                                        nn.ConvTranspose1d(width, cout, stride * 2, stride, stride // 2)))
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)


class Encoder(nn.Module):
    def __init__(self, h, level):
        super().__init__()
        m = h['hvqvae_multipliers'][level] if h['hvqvae_multipliers'] else 1
        self.level_blocks = nn.ModuleList(
            EncoderBlock(h, 1 if b == 0 else h['emb_width'], h['width'] * m, h['depth'] * m, h['downs_t'][b], h['strides_t'][b])
            for b in range(level + 1))

    def forward(self, x):
        for blk in self.level_blocks:
            x = blk(x)
        return x


class Decoder(nn.Module):
    def __init__(self, h, level):
        super().__init__()
        m = h['hvqvae_multipliers'][level] if h['hvqvae_multipliers'] else 1
        self.level_blocks = nn.ModuleList(
            DecoderBlock(h, h['width'] * m, h['depth'] * m, h['downs_t'][b], h['strides_t'][b]) for b in range(level + 1))
        self.out = nn.Conv1d(h['emb_width'], 1, 3, 1, 1)

    def forward(self, x):
        for blk in reversed(self.level_blocks):
            x = blk(x)
        return self.out(x)


class Codebook(nn.Module):
    """Nearest-code quantiser with EMA updates and random restarts. `k` is what the engine uses;
    k_sum / k_elem are the EMA statistics (the original's names)."""

    def __init__(self, bins, width, decay, threshold):
        super().__init__()
        self.bins, self.width, self.decay, self.threshold = bins, width, decay, threshold
        self.register_buffer('k', torch.zeros(bins, width))
        self.register_buffer('k_sum', torch.zeros(bins, width))
        self.register_buffer('k_elem', torch.ones(bins))
        self.register_buffer('initialised', torch.zeros((), dtype=torch.bool))
        self.restarts = True

    def codes(self, x):
        """x: (N, width) -> nearest code ids, as the engine computes them (squared L2)."""
        d = (x * x).sum(1, keepdim=True) - 2 * x @ self.k.t() + (self.k * self.k).sum(1)[None]
        return d.argmin(1)

    def _random_rows(self, x, n):
        """n encoder outputs of this batch (repeated with a little noise if the batch is small)."""
        if x.shape[0] < n:
            reps = (n + x.shape[0] - 1) // x.shape[0]
            x = x.repeat(reps, 1) + 0.01 / self.width ** 0.5 * torch.randn(x.shape[0] * reps, x.shape[1], device=x.device)
        return x[torch.randperm(x.shape[0], device=x.device)[:n]]

    @torch.no_grad()
    def update(self, x, ids):
        """EMA step and restarts; returns (codes restarted, perplexity, used codes) of the batch.

        A code is restarted when its EMA count falls below `threshold`, scaled down when a batch
        holds few vectors per code (the top level of a small batch has about one per code, so an
        absolute threshold of 1 would restart half the codebook at every step): the threshold
        is min(threshold, threshold * vectors / (2 * bins))."""
        if not bool(self.initialised):
            self.k.copy_(self._random_rows(x, self.bins))
            self.k_sum.copy_(self.k)
            self.k_elem.fill_(1.0)
            self.initialised.fill_(True)
        onehot = F.one_hot(ids, self.bins).to(x.dtype)
        counts = onehot.sum(0)
        self.k_sum.mul_(self.decay).add_((1 - self.decay) * onehot.t() @ x)
        self.k_elem.mul_(self.decay).add_((1 - self.decay) * counts)
        threshold = min(self.threshold, self.threshold * x.shape[0] / (2 * self.bins))
        used = (self.k_elem >= threshold).to(x.dtype)[:, None]
        fresh = self.k_sum / self.k_elem.clamp_min(1e-6)[:, None]
        restarted = 0
        if self.restarts:
            rand = self._random_rows(x, self.bins)
            self.k.copy_(used * fresh + (1 - used) * rand)
            # a restarted code starts its statistics from the new vector
            self.k_sum.copy_(used * self.k_sum + (1 - used) * rand)
            self.k_elem.copy_(used[:, 0] * self.k_elem + (1 - used[:, 0]))
            restarted = int((1 - used).sum())
        else:
            self.k.copy_(fresh)
        p = counts / counts.sum()
        perplexity = torch.exp(-(p * torch.log(p + 1e-10)).sum())
        return restarted, float(perplexity), int((counts > 0).sum())

    def forward(self, x, train):
        """x: (B, width, T) -> straight-through quantised x, ids (B, T), commitment loss, stats."""
        B, C, T = x.shape
        flat = x.permute(0, 2, 1).reshape(-1, C)
        ids = self.codes(flat)
        stats = self.update(flat.detach(), ids) if train else (0, 0.0, 0)
        q = self.k[ids]
        commit = F.mse_loss(flat, q.detach())
        q = flat + (q - flat).detach()
        return q.reshape(B, T, C).permute(0, 2, 1), ids.reshape(B, T), commit, stats


def stft_mag(x, n_fft, hop, win):
    window = torch.hann_window(win, device=x.device)
    return torch.stft(x, n_fft, hop, win, window, return_complex=True).abs()


def multispectral_loss(x, y, resolutions):
    """Sum over resolutions of spectral convergence + log-magnitude L1 (x, y: (B, T))."""
    total = 0.0
    for n_fft, hop, win in resolutions:
        a, b = stft_mag(x, n_fft, hop, win), stft_mag(y, n_fft, hop, win)
        total = total + torch.linalg.norm(a - b) / torch.linalg.norm(a).clamp_min(1e-7)
        total = total + (torch.log(a + 1e-5) - torch.log(b + 1e-5)).abs().mean()
    return total / len(resolutions)


def lmix_loss(x, y, linf_weight):
    """L2 plus the mean of the largest 1% absolute errors per example (the L-inf term keeps
    transients from being smeared)."""
    err = (x - y).abs()
    k = max(1, err.shape[-1] // 100)
    return (err ** 2).mean() + linf_weight * err.topk(k, dim=-1).values.mean()


class VQVAE(nn.Module):
    def __init__(self, h, train_cfg=None):
        super().__init__()
        t = train_cfg or {}
        self.h = h
        self.levels = h['levels']
        self.encoders = nn.ModuleList(Encoder(h, l) for l in range(self.levels))
        self.decoders = nn.ModuleList(Decoder(h, l) for l in range(self.levels))
        self.bottleneck = nn.Module()
        self.bottleneck.level_blocks = nn.ModuleList(
            Codebook(h['l_bins'], h['emb_width'], t.get('emb_decay', 0.99), t.get('restart_threshold', 1.0))
            for _ in range(self.levels))
        hop = 1
        self.hops = []
        for d, s in zip(h['downs_t'], h['strides_t']):
            hop *= s ** d
            self.hops.append(hop)

    def set_restarts(self, on):
        for cb in self.bottleneck.level_blocks:
            cb.restarts = on

    @torch.no_grad()
    def encode(self, x):
        """x: (B, T) audio -> [ids (B, T / hop_L)] per level."""
        x = x[:, None, :]
        return [self.bottleneck.level_blocks[l].codes(self.encoders[l](x).permute(0, 2, 1).reshape(-1, self.h['emb_width']))
                .reshape(x.shape[0], -1) for l in range(self.levels)]

    @torch.no_grad()
    def decode(self, ids, level):
        """ids: (B, T_L) -> audio (B, T_L * hop_L)."""
        z = self.bottleneck.level_blocks[level].k[ids].permute(0, 2, 1)
        return self.decoders[level](z)[:, 0]

    def forward(self, x, cfg):
        """Training step: x (B, T) -> total loss and a dict of metrics per level."""
        metrics = {}
        total = 0.0
        for l in range(self.levels):
            z = self.encoders[l](x[:, None, :])
            q, _, commit, (restarted, ppl, used) = self.bottleneck.level_blocks[l](z, self.training)
            y = self.decoders[l](q)[:, 0]
            rec = lmix_loss(x, y, cfg['lmix_linf'])
            spec = multispectral_loss(x, y, cfg['stft'])
            total = total + cfg['lmix_l2'] * rec + cfg['multispectral'] * spec + cfg['commit'] * commit
            metrics[l] = {'rec': float(rec), 'spec': float(spec), 'commit': float(commit), 'ppl': ppl, 'used': used,
                          'restarted': restarted}
        return total, metrics


# Codebook training state: in checkpoints, not in exports (the engine needs only `k`).
EMA_BUFFERS = ('.k_sum', '.k_elem', '.initialised')


def engine_tensors(model):
    """The tensors the engine loads: conv weights/biases and the codebooks `k` (no EMA stats)."""
    return {k: v for k, v in model.state_dict().items() if not k.endswith(EMA_BUFFERS)}


def export_vqvae(model, hparams, path, dtype=torch.float32, source=None):
    tensors = {k: v.to(dtype) for k, v in engine_tensors(model).items()}
    meta = {'format': 'jukebox-node/1', 'jukebox.kind': 'vqvae', 'jukebox.hparams': json.dumps(structure_of('vqvae', hparams)),
            'jukebox.source': json.dumps(source or {'format': 'jukebox-train'})}
    save_file(path, tensors, meta)
