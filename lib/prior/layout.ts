/**
 * A prior's state-dict keys and shapes (reference §e.3), and the plan the native engine
 * builds it from.
 */
import { decoderConvBlock, stackKeys, type ConvDesc, type LayerDesc } from '../vqvae/layout.js';
import type { PriorStructure, TransformerStructure } from './structure.js';

function transformerKeys(prefix: string, t: TransformerStructure, keys: Map<string, number[]>): void {
  const { width: w, state: s, mlp: m } = t;
  t.attnFuncs.forEach((f, d) => {
    const p = `${prefix}.transformer._attn_mods.${d}`;
    keys.set(`${p}.attn.c_attn.w`, [w, f === 6 ? s : 3 * s]);
    keys.set(`${p}.attn.c_attn.b`, [f === 6 ? s : 3 * s]);
    if (f === 6) {
      keys.set(`${p}.attn.c_enc_kv.w`, [w, 2 * s]);
      keys.set(`${p}.attn.c_enc_kv.b`, [2 * s]);
    }
    keys.set(`${p}.attn.c_proj.w`, [s, w]);
    keys.set(`${p}.attn.c_proj.b`, [w]);
    for (const ln of ['ln_0', 'ln_1']) {
      keys.set(`${p}.${ln}.weight`, [w]);
      keys.set(`${p}.${ln}.bias`, [w]);
    }
    keys.set(`${p}.mlp.c_fc.w`, [w, m]);
    keys.set(`${p}.mlp.c_fc.b`, [m]);
    keys.set(`${p}.mlp.c_proj.w`, [m, w]);
    keys.set(`${p}.mlp.c_proj.b`, [w]);
  });
}

/** The upsampler conditioner's conv stack (x_emb -> DecoderConvBock -> LayerNorm). */
export function conditionerLayers(s: PriorStructure): LayerDesc[] {
  const c = s.cond!;
  const w = s.prior.width;
  return decoderConvBlock(
    'conditioner_blocks.0.cond.model',
    {
      inWidth: w,
      outWidth: w,
      down: c.down,
      stride: c.stride,
      resnet: { width: c.width, depth: c.depth, mConv: c.mConv, growth: c.growth, cycle: c.cycle, reverse: false, scale: c.resScale },
    },
    c.container,
  );
}

export function priorKeys(s: PriorStructure): Map<string, number[]> {
  const keys = new Map<string, number[]>();
  const w = s.prior.width;
  keys.set('y_emb.bow_genre_emb.emb.weight', [s.labels.genreBins, w]);
  keys.set('y_emb.artist_emb.emb.weight', [s.labels.artistBins, w]);
  if (s.timing) {
    for (const k of ['total_length', 'absolute_pos', 'relative_pos']) keys.set(`y_emb.${k}_emb.emb.weight`, [s.labels.tBins, w]);
  }
  if (s.upsampler) {
    keys.set('conditioner_blocks.0.x_emb.weight', [s.lBins, w]);
    stackKeys(conditionerLayers(s), keys);
    keys.set('conditioner_blocks.0.ln.weight', [w]);
    keys.set('conditioner_blocks.0.ln.bias', [w]);
  }
  if (s.encoder) {
    const e = s.encoder;
    keys.set('prime_prior.start_token', [1, e.width]);
    keys.set('prime_prior.x_emb.weight', [s.nVocab, e.width]);
    keys.set('prime_prior.pos_emb.pos_emb', [e.len, e.width]);
    transformerKeys('prime_prior', e, keys);
    keys.set('prime_state_proj.w', [e.width, w]);
    keys.set('prime_state_proj.b', [w]);
    keys.set('prime_state_ln.weight', [w]);
    keys.set('prime_state_ln.bias', [w]);
    keys.set('prime_x_out.weight', [s.nVocab, w]);
  }
  keys.set('prior.x_emb.weight', [s.bins, w]);
  keys.set('prior.pos_emb.pos_emb', [s.prior.len, w]);
  transformerKeys('prior', s.prior, keys);
  keys.set('prior.x_out.weight', [s.bins, w]);
  return keys;
}

/** Native plan of a transformer; `ref` maps a state-dict key to a weight reference. */
export function transformerPlan<W>(prefix: string, t: TransformerStructure, ref: (key: string) => W) {
  return {
    width: t.width,
    state: t.state,
    mlp: t.mlp,
    heads: t.heads,
    len: t.len,
    blocks: t.blocks,
    primeLen: t.primeLen,
    encLen: t.encLen,
    resScale: t.resScale,
    layers: t.attnFuncs.map((f, d) => {
      const p = `${prefix}.transformer._attn_mods.${d}`;
      const lin = (name: string) => ({ w: ref(`${p}.${name}.w`), b: ref(`${p}.${name}.b`) });
      const ln = (name: string) => ({ w: ref(`${p}.${name}.weight`), b: ref(`${p}.${name}.bias`) });
      return {
        attnFunc: f,
        ln0: ln('ln_0'),
        ln1: ln('ln_1'),
        cAttn: lin('attn.c_attn'),
        cEncKv: f === 6 ? lin('attn.c_enc_kv') : undefined,
        cProj: lin('attn.c_proj'),
        mlpFc: lin('mlp.c_fc'),
        mlpProj: lin('mlp.c_proj'),
      };
    }),
  };
}

export function priorPlan<W>(s: PriorStructure, ref: (key: string) => W) {
  const L = s.labels;
  const plan: Record<string, unknown> = {
    labels: {
      artistEmb: ref('y_emb.artist_emb.emb.weight'),
      genreEmb: ref('y_emb.bow_genre_emb.emb.weight'),
      artistBins: L.artistBins,
      genreBins: L.genreBins,
      maxBowGenreSize: L.maxBowGenreSize,
      nTime: s.nCtx,
      // LabelConditioner's ranges: total length in [min, max) * sr, absolute position in
      // [0, max_duration * sr), relative position in [0, 1) (end clamped).
      timing: s.timing
        ? {
            tBins: L.tBins,
            totalLength: { emb: ref('y_emb.total_length_emb.emb.weight'), min: L.minDuration! * L.sr, max: L.maxDuration! * L.sr },
            absolutePos: { emb: ref('y_emb.absolute_pos_emb.emb.weight'), min: 0, max: L.maxDuration! * L.sr },
            relativePos: { emb: ref('y_emb.relative_pos_emb.emb.weight'), min: 0, max: 1, clamp: true },
          }
        : undefined,
    },
    prior: {
      bins: s.bins,
      addCondAfter: !s.mergedDecoder,
      xEmb: ref('prior.x_emb.weight'),
      posEmb: ref('prior.pos_emb.pos_emb'),
      xOut: ref('prior.x_out.weight'),
      transformer: transformerPlan('prior', s.prior, ref),
    },
  };
  if (s.upsampler) {
    const conv = (c: ConvDesc) => ({ ...c, weight: ref(`${c.name}.weight`), bias: ref(`${c.name}.bias`) });
    plan.conditioner = {
      bins: s.lBins,
      xEmb: ref('conditioner_blocks.0.x_emb.weight'),
      stack: {
        inChannels: s.prior.width,
        outChannels: s.prior.width,
        layers: conditionerLayers(s).map((l) =>
          l.kind === 'conv' ? { kind: 'conv', conv: conv(l.conv) } : { kind: 'res', a: conv(l.a), b: conv(l.b), scale: l.scale },
        ),
      },
      ln: { w: ref('conditioner_blocks.0.ln.weight'), b: ref('conditioner_blocks.0.ln.bias') },
    };
  }
  if (s.encoder) {
    plan.lyricEncoder = {
      outWidth: s.prior.width,
      body: {
        bins: s.nVocab,
        addCondAfter: false,
        xEmb: ref('prime_prior.x_emb.weight'),
        posEmb: ref('prime_prior.pos_emb.pos_emb'),
        startToken: ref('prime_prior.start_token'),
        transformer: transformerPlan('prime_prior', s.encoder, ref),
      },
      proj: { w: ref('prime_state_proj.w'), b: ref('prime_state_proj.b') },
      ln: { w: ref('prime_state_ln.weight'), b: ref('prime_state_ln.bias') },
    };
  }
  return plan;
}
