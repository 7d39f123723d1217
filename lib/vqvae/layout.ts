/**
 * The VQ-VAE's layer plan and state-dict keys, derived from the hyperparameters the way
 * the original builds its modules (jukebox/vqvae/encdec.py, resnet.py; reference §b.2,
 * §e.2). The native engine runs this plan; the loader checks every key and shape of a
 * checkpoint against it.
 */
import { hopLengths, type VQVAEHparams } from './hparams.js';

export interface ConvDesc {
  name: string; // key prefix: `${name}.weight`, `${name}.bias`
  cin: number;
  cout: number;
  kernel: number;
  stride: number;
  pad: number;
  dilation: number;
  transposed: boolean;
}

export type LayerDesc =
  | { kind: 'conv'; conv: ConvDesc }
  | { kind: 'res'; a: ConvDesc; b: ConvDesc; scale: number };

export interface StackDesc {
  inChannels: number;
  outChannels: number;
  layers: LayerDesc[];
}

export interface VQVAELayout {
  hopLengths: number[];
  encoders: StackDesc[];
  decoders: StackDesc[];
  codebooks: { name: string; bins: number; width: number }[];
  /** Every state-dict key with its shape. */
  keys: Map<string, number[]>;
}

/** How Resnet1D stores its blocks: `model` (nn.Sequential) or `blocks` when checkpoint_res == 1. */
export type ResnetContainer = 'model' | 'blocks';

function conv(name: string, cin: number, cout: number, kernel: number, stride = 1, pad = 0, dilation = 1): ConvDesc {
  return { name, cin, cout, kernel, stride, pad, dilation, transposed: false };
}

function convT(name: string, cin: number, cout: number, kernel: number, stride: number, pad: number): ConvDesc {
  return { name, cin, cout, kernel, stride, pad, dilation: 1, transposed: true };
}

export interface ResnetSpec {
  width: number;
  depth: number;
  mConv: number;
  growth: number;
  cycle: number | null;
  reverse: boolean;
  /** Resnet1D res_scale: 1, or 1/sqrt(depth) when the hyperparameter is true. */
  scale: number;
}

/** Resnet1D: residual blocks with dilation growth ** (d or d % cycle), optionally reversed. */
export function resnet(prefix: string, r: ResnetSpec, container: ResnetContainer): LayerDesc[] {
  const nState = Math.trunc(r.mConv * r.width);
  const dilations: number[] = [];
  for (let d = 0; d < r.depth; d++) dilations.push(r.growth ** (r.cycle === null ? d : d % r.cycle));
  if (r.reverse) dilations.reverse();
  return dilations.map((dil, j) => ({
    kind: 'res' as const,
    a: conv(`${prefix}.${container}.${j}.model.1`, r.width, nState, 3, 1, dil, dil),
    b: conv(`${prefix}.${container}.${j}.model.3`, nState, r.width, 1),
    scale: r.scale,
  }));
}

/**
 * DecoderConvBock (sic, jukebox/vqvae/encdec.py): a k3 conv in, then `down` times a
 * Resnet1D and a stride-`stride` transposed conv (the last one out to `outWidth`). Used by
 * the VQ-VAE decoders and by the upsamplers' conditioner.
 */
export function decoderConvBlock(
  prefix: string,
  o: { inWidth: number; outWidth: number; down: number; stride: number; resnet: ResnetSpec },
  container: ResnetContainer,
): LayerDesc[] {
  if (o.down === 0) return []; // an empty nn.Sequential
  const w = o.resnet.width;
  const layers: LayerDesc[] = [{ kind: 'conv', conv: conv(`${prefix}.0`, o.inWidth, w, 3, 1, 1) }];
  for (let i = 0; i < o.down; i++) {
    layers.push(...resnet(`${prefix}.${i + 1}.0`, o.resnet, container));
    const cout = i === o.down - 1 ? o.outWidth : w;
    layers.push({ kind: 'conv', conv: convT(`${prefix}.${i + 1}.1`, w, cout, o.stride * 2, o.stride, Math.floor(o.stride / 2)) });
  }
  return layers;
}

/** Weight keys and shapes of a stack's convs. */
export function stackKeys(layers: LayerDesc[], keys: Map<string, number[]>): void {
  const addConv = (c: ConvDesc) => {
    // Conv1d weight is (out, in, k); ConvTranspose1d weight is (in, out, k).
    keys.set(`${c.name}.weight`, c.transposed ? [c.cin, c.cout, c.kernel] : [c.cout, c.cin, c.kernel]);
    keys.set(`${c.name}.bias`, [c.cout]);
  };
  for (const layer of layers) {
    if (layer.kind === 'conv') addConv(layer.conv);
    else {
      addConv(layer.a);
      addConv(layer.b);
    }
  }
}

export function vqvaeLayout(h: VQVAEHparams, container: ResnetContainer = 'model'): VQVAELayout {
  const encoders: StackDesc[] = [];
  const decoders: StackDesc[] = [];
  for (let level = 0; level < h.levels; level++) {
    const m = h.hvqvae_multipliers ? h.hvqvae_multipliers[level] : 1;
    const width = h.width * m;
    // make_vqvae never passes res_scale, so the VQ-VAE's residual scale is always 1.
    const res: ResnetSpec = { width, depth: h.depth * m, mConv: h.m_conv, growth: h.dilation_growth_rate, cycle: h.dilation_cycle, reverse: false, scale: 1 };

    // Encoder for this level: level+1 EncoderConvBlocks chained from the raw audio.
    const enc: LayerDesc[] = [];
    for (let b = 0; b <= level; b++) {
      const down = h.downs_t[b], stride = h.strides_t[b];
      if (down === 0) continue; // EncoderConvBlock with down_t == 0 is an empty Sequential
      const p = `encoders.${level}.level_blocks.${b}.model`;
      for (let i = 0; i < down; i++) {
        const cin = i === 0 ? (b === 0 ? 1 : h.emb_width) : width;
        enc.push({ kind: 'conv', conv: conv(`${p}.${i}.0`, cin, width, stride * 2, stride, Math.floor(stride / 2)) });
        enc.push(...resnet(`${p}.${i}.1`, res, container));
      }
      enc.push({ kind: 'conv', conv: conv(`${p}.${down}`, width, h.emb_width, 3, 1, 1) });
    }
    encoders.push({ inChannels: 1, outChannels: h.emb_width, layers: enc });

    // Decoder: level_blocks applied from `level` down to 0, then the output conv.
    const dec: LayerDesc[] = [];
    for (let b = level; b >= 0; b--) {
      dec.push(
        ...decoderConvBlock(
          `decoders.${level}.level_blocks.${b}.model`,
          { inWidth: h.emb_width, outWidth: h.emb_width, down: h.downs_t[b], stride: h.strides_t[b], resnet: { ...res, reverse: h.vqvae_reverse_decoder_dilation } },
          container,
        ),
      );
    }
    dec.push({ kind: 'conv', conv: conv(`decoders.${level}.out`, h.emb_width, 1, 3, 1, 1) });
    decoders.push({ inChannels: h.emb_width, outChannels: 1, layers: dec });
  }

  const codebooks = Array.from({ length: h.levels }, (_, l) => ({
    name: `bottleneck.level_blocks.${l}.k`,
    bins: h.l_bins,
    width: h.emb_width,
  }));

  const keys = new Map<string, number[]>();
  for (const stack of [...encoders, ...decoders]) stackKeys(stack.layers, keys);
  for (const cb of codebooks) keys.set(cb.name, [cb.bins, cb.width]);

  return { hopLengths: hopLengths(h), encoders, decoders, codebooks, keys };
}
