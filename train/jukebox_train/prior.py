"""The Jukebox prior (SimplePrior without lyrics) in plain PyTorch, written from the
architecture notes (/work/shared/jukebox-reference.md §c) so that its state dict uses the
original's key names and its logits equal the original's and the engine's:

  y_emb.*               LabelConditioner: artist + bag-of-genre start embedding; timing
                        (total length, absolute and relative position) for the top level
  conditioner_blocks.0  upsamplers: x_emb of the upper level's codes -> DecoderConvBock -> LN
  prior.*               ConditionalAutoregressive2D: x_emb, pos_emb, factorised transformer,
                        x_out (tied to x_emb unless merged_decoder)

The factorised attention (row / column / previous row) is done with dense n_ctx x n_ctx
masks: O(n_ctx^2), fine at n_ctx 512, and the same numbers as the engine's block-sparse code.
"""
import json
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .configs import structure_of
from .safetensors_io import save_file

FORMAT_TAG = 'jukebox-node/1'


def hop_lengths(vq):
    hops, h = [], 1
    for d, s in zip(vq['downs_t'], vq['strides_t']):
        h *= s ** d
        hops.append(h)
    return hops


def attn_func(order, d):
    """attn_order -> attention type of layer d (reference §c.4); lyric types are not supported."""
    table = {0: lambda: 0, 1: lambda: [1, 2][d % 2], 2: lambda: [1, 2, 3][d % 3],
             9: lambda: [1, 2, 3, 0][d % 4]}
    if order not in table:
        raise ValueError(f'attn_order {order} is not supported here (lyrics / summary attention)')
    return table[order]()


def attn_mask(func, n, blocks):
    """(n, n) bool: which keys j query i sees. Type 3 rows of block 0 see nothing."""
    i = torch.arange(n)[:, None]
    j = torch.arange(n)[None, :]
    bc = n // blocks
    if func == 0:
        return j <= i
    if func == 1:
        return (j // bc == i // bc) & (j <= i)
    if func == 2:
        return (j % bc == i % bc) & (j <= i)
    if func == 3:
        return j // bc == i // bc - 1
    raise ValueError(f'attention type {func} is not supported')


class Conv1D(nn.Module):
    """The original's Conv1D: y = x @ w + b with w laid out (in, out)."""

    def __init__(self, n_in, n_out, std):
        super().__init__()
        self.w = nn.Parameter(torch.randn(n_in, n_out) * std)
        self.b = nn.Parameter(torch.zeros(n_out))

    def forward(self, x):
        return torch.addmm(self.b, x.reshape(-1, x.shape[-1]), self.w).view(*x.shape[:-1], -1)


class Attention(nn.Module):
    def __init__(self, width, n_state, heads, func, n_ctx, blocks, std):
        super().__init__()
        self.heads, self.func = heads, func
        self.c_attn = Conv1D(width, 3 * n_state, std)
        self.c_proj = Conv1D(n_state, width, std)
        mask = attn_mask(func, n_ctx, blocks)
        self.register_buffer('mask', mask, persistent=False)
        # Rows that see no key (previous-row attention in block 0) output zero: the original
        # attends to zero keys/values there.
        self.register_buffer('any', mask.any(-1, keepdim=True).float(), persistent=False)

    def forward(self, x):
        B, T, _ = x.shape
        q, k, v = self.c_attn(x).chunk(3, dim=-1)
        split = lambda t: t.view(B, T, self.heads, -1).transpose(1, 2)
        q, k, v = split(q), split(k), split(v)
        w = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
        w = w.float().masked_fill(~self.mask[:T, :T], -1e9)
        p = torch.softmax(w, dim=-1).type_as(v) * self.any[:T]
        a = torch.matmul(p, v).transpose(1, 2).reshape(B, T, -1)
        return self.c_proj(a)


class MLP(nn.Module):
    def __init__(self, width, n_state, std):
        super().__init__()
        self.c_fc = Conv1D(width, n_state, std)
        self.c_proj = Conv1D(n_state, width, std)

    def forward(self, x):
        h = self.c_fc(x)
        return self.c_proj(h * torch.sigmoid(1.702 * h))  # quick GELU, as the original


class Block(nn.Module):
    """Pre-LN residual block: a = attn(ln_0 x); m = mlp(ln_1(x + a)); x + s(a + m)."""

    def __init__(self, h, d, res_scale):
        super().__init__()
        w = h['prior_width']
        std = 0.02 * h['init_scale']
        self.ln_0 = nn.LayerNorm(w)
        self.attn = Attention(w, int(h['m_attn'] * w), h['heads'], attn_func(h['attn_order'], d),
                              h['n_ctx'], h['blocks'] or 1, std)
        self.ln_1 = nn.LayerNorm(w)
        self.mlp = MLP(w, int(h['m_mlp'] * w), std)
        self.res_scale = res_scale

    def forward(self, x):
        a = self.attn(self.ln_0(x))
        m = self.mlp(self.ln_1(x + a))
        return x + self.res_scale * (a + m)


class Transformer(nn.Module):
    def __init__(self, h):
        super().__init__()
        s = 1.0 / h['prior_depth'] if h.get('res_scale') else 1.0
        self._attn_mods = nn.ModuleList([Block(h, d, s) for d in range(h['prior_depth'])])

    def forward(self, x):
        for m in self._attn_mods:
            x = m(x)
        return x


class PosEmb(nn.Module):
    def __init__(self, n, w, std):
        super().__init__()
        self.pos_emb = nn.Parameter(torch.randn(n, w) * std)


class Autoregressive(nn.Module):
    """ConditionalAutoregressive2D with y_cond: position 0's input is the start embedding."""

    def __init__(self, h, bins):
        super().__init__()
        w = h['prior_width']
        self.x_emb = nn.Embedding(bins, w)
        nn.init.normal_(self.x_emb.weight, std=0.02 * h['init_scale'])
        self.pos_emb = PosEmb(h['n_ctx'], w, 0.01 * h['init_scale'])
        self.transformer = Transformer(h)
        self.x_out = nn.Linear(w, bins, bias=False)
        self.merged = bool(h.get('merged_decoder'))
        if not self.merged:
            self.x_out.weight = self.x_emb.weight  # tied, and x_cond added again after

    def forward(self, x, y_cond, x_cond):
        h = self.x_emb(x)
        h = torch.cat([y_cond.view(h.shape[0], 1, -1), h[:, :-1]], dim=1)  # shift right
        h = h + self.pos_emb.pos_emb[: h.shape[1]] + x_cond
        h = self.transformer(h)
        if not self.merged:
            h = h + x_cond
        return self.x_out(h)


class Emb(nn.Module):
    """SimpleEmbedding / RangeEmbedding storage: key `.emb.weight`."""

    def __init__(self, n, w, std):
        super().__init__()
        self.emb = nn.Embedding(n, w)
        nn.init.normal_(self.emb.weight, std=std)


def range_bins(start, end, n_time, lo, hi, t_bins, clamp=False):
    """RangeEmbedding's bins, in float32 as the original (and the engine) compute them."""
    start, end = start.float(), end.float()
    if not bool(((lo <= start) & (start < hi)).all()):
        raise ValueError(f'timing value outside [{lo}, {hi}): {start.tolist()}')
    if clamp:
        end = end.clamp(lo, hi)
    if n_time == 1:
        pos = start[:, None]
    else:
        interp = torch.arange(n_time, dtype=torch.float32, device=start.device) / n_time
        pos = start[:, None] + (end - start)[:, None] * interp[None]
    norm = (pos - lo) / (hi - lo)
    return torch.floor(t_bins * norm).long().clamp(0, t_bins - 1)


class LabelConditioner(nn.Module):
    def __init__(self, h, timing):
        super().__init__()
        w, std = h['prior_width'], 0.01 * h['init_scale']
        self.bow_genre_emb = Emb(h['y_bins'][0], w, std)
        self.artist_emb = Emb(h['y_bins'][1], w, std)
        self.timing = timing
        self.n_genre = h['max_bow_genre_size']
        if timing:
            self.t_bins, sr = h['t_bins'], h['sr']
            self.ranges = {'total_length': (h['min_duration'] * sr, h['max_duration'] * sr),
                           'absolute_pos': (0.0, h['max_duration'] * sr), 'relative_pos': (0.0, 1.0)}
            for k in self.ranges:
                setattr(self, f'{k}_emb', Emb(self.t_bins, w, std))

    def forward(self, y, n_time):
        """y: (B, 4 + max_bow_genre_size) label rows -> y_cond (B, 1, w), x_cond (B, n_time, w) | None."""
        genre = y[:, 4: 4 + self.n_genre]
        g = self.bow_genre_emb.emb(genre.clamp(min=0)) * (genre >= 0).unsqueeze(-1).float()
        y_cond = g.sum(1, keepdim=True) + self.artist_emb.emb(y[:, 3:4])
        if not self.timing:
            return y_cond, None
        total, start = y[:, 0].float(), y[:, 1].float()
        end = (y[:, 1] + y[:, 2]).float()
        tb = self.t_bins
        r = self.ranges
        t = self.total_length_emb.emb(range_bins(total, total, 1, *r['total_length'], tb))
        a = self.absolute_pos_emb.emb(range_bins(start, end, n_time, *r['absolute_pos'], tb))
        rel = self.relative_pos_emb.emb(range_bins(start / total, end / total, n_time, 0.0, 1.0, tb, clamp=True))
        return y_cond, t + a + rel


class ResBlock(nn.Module):
    def __init__(self, n, n_state, dilation, scale):
        super().__init__()
        self.model = nn.Sequential(nn.ReLU(), nn.Conv1d(n, n_state, 3, 1, dilation, dilation),
                                   nn.ReLU(), nn.Conv1d(n_state, n, 1))
        self.scale = scale

    def forward(self, x):
        return x + self.scale * self.model(x)


class Resnet1D(nn.Module):
    def __init__(self, n, depth, m_conv, growth, cycle, scale, c_res):
        super().__init__()
        blocks = [ResBlock(n, int(m_conv * n), growth ** (d if cycle is None else d % cycle), scale)
                  for d in range(depth)]
        # The original stores the blocks as `blocks` (ModuleList) when checkpoint_res == 1.
        if c_res == 1:
            self.blocks = nn.ModuleList(blocks)
        else:
            self.model = nn.Sequential(*blocks)

    def forward(self, x):
        for b in (self.blocks if hasattr(self, 'blocks') else self.model):
            x = b(x)
        return x


class UpsamplerConditioner(nn.Module):
    """x_emb(upper codes) -> DecoderConvBock (k3 in, then down x [Resnet1D, ConvT]) -> LayerNorm."""

    def __init__(self, h, l_bins, down, stride):
        super().__init__()
        w, cw = h['prior_width'], h['cond_width']
        self.x_emb = nn.Embedding(l_bins, w)
        nn.init.normal_(self.x_emb.weight, std=0.02 * h['init_scale'])
        scale = 1.0 / math.sqrt(h['cond_depth']) if h.get('cond_res_scale') else 1.0
        layers = [nn.Conv1d(w, cw, 3, 1, 1)]
        for i in range(down):
            layers.append(nn.Sequential(
                Resnet1D(cw, h['cond_depth'], h['cond_m_conv'], h['cond_dilation_growth_rate'],
                         h['cond_dilation_cycle'], scale, h.get('cond_c_res', 0)),
                nn.ConvTranspose1d(cw, w if i == down - 1 else cw, stride * 2, stride, stride // 2)))
        self.cond = nn.Module()
        self.cond.model = nn.Sequential(*layers)
        self.ln = nn.LayerNorm(w)

    def forward(self, z):
        x = self.x_emb(z).permute(0, 2, 1)
        x = self.cond.model(x).permute(0, 2, 1)
        return self.ln(x)


class Prior(nn.Module):
    """A top-level prior (labels + timing) or an upsampler (labels + upper-level codes)."""

    def __init__(self, h, vq):
        super().__init__()
        if h.get('use_tokens') and h.get('n_tokens', 0) > 0:
            raise ValueError('lyric priors are not supported by this trainer')
        self.h, self.vq = h, vq
        self.level = h['level']
        self.upsampler = self.level != vq['levels'] - 1
        self.n_ctx = h['n_ctx']
        self.bins = vq['l_bins']
        self.hop = hop_lengths(vq)[self.level]
        if self.upsampler:
            down, stride = vq['downs_t'][self.level + 1], vq['strides_t'][self.level + 1]
            self.cond_downsample = stride ** down
            self.conditioner_blocks = nn.ModuleList([UpsamplerConditioner(h, self.bins, down, stride)])
        self.y_emb = LabelConditioner(h, timing=not self.upsampler)
        self.prior = Autoregressive(h, self.bins)

    def conditioning(self, y, z_cond=None):
        """-> (y_cond (B,1,w), x_cond (B,T,w)): the start embedding and timing / upper codes."""
        y_cond, timing = self.y_emb(y, self.n_ctx)
        if self.upsampler:
            return y_cond, self.conditioner_blocks[0](z_cond)
        return y_cond, timing

    def forward(self, x, y, z_cond=None):
        """x (B, T) codes, y (B, 4+G) label rows, z_cond (B, T/ratio) upper codes -> logits (B, T, bins)."""
        y_cond, x_cond = self.conditioning(y, z_cond)
        return self.prior(x, y_cond, x_cond[:, : x.shape[1]])

    def loss(self, x, y, z_cond=None):
        """-> (loss in nats per token, bits per token)."""
        logits = self(x, y, z_cond)
        nats = F.cross_entropy(logits.reshape(-1, self.bins).float(), x.reshape(-1))
        return nats, nats / math.log(2)


def engine_state_dict(model):
    """The tensors the engine reads (every key of lib/prior/layout.ts priorKeys, tied x_out too)."""
    return {k: v.detach().cpu() for k, v in model.state_dict(keep_vars=False).items()}


def export_prior(model, hparams, vqvae_hparams, vocab, path, dtype=torch.float32, source=None):
    """Writes a prior as the engine's safetensors. fp16: matrices and embeddings only; vectors
    (biases, LayerNorms) stay fp32 as the official fp16 checkpoints keep them."""
    tensors = {}
    for k, v in engine_state_dict(model).items():
        v = v.float()
        tensors[k] = v.to(dtype) if v.dim() >= 2 else v
    meta = {
        'format': FORMAT_TAG,
        'jukebox.kind': 'prior',
        'jukebox.hparams': json.dumps(structure_of('prior', hparams)),
        'jukebox.vqvae_hparams': json.dumps(structure_of('vqvae', vqvae_hparams)),
        'jukebox.source': json.dumps(source or {'trainer': 'jukebox-train prior'}),
    }
    if vocab is not None:
        meta['jukebox.vocab'] = json.dumps(vocab)
    save_file(path, tensors, meta)
    return path
