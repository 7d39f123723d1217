import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { isJukeboxError, type JukeboxErrorCode } from '../lib/errors.js';
import {
  readTorchCheckpoint,
  readTensorData,
  streamTensorData,
  isContiguous,
  tensorNbytes,
  readSafetensorsHeader,
  readSafetensorsTensor,
  writeSafetensors,
  zipStore,
  readZipEntries,
  unpickle,
  isTuple,
  PickleCall,
  PickleGlobal,
  PyCallable,
  type DType,
  type TensorRef,
} from '../lib/checkpoint/index.js';
import { crc32 } from '../lib/checkpoint/zip.js';

const FIX = 'test/fixtures/checkpoint';
const VQ_LEGACY = 'test/fixtures/vqvae/vqvae.legacy.pth.tar';
const VQ_ZIP = 'test/fixtures/vqvae/vqvae.zip.pth.tar';
const SHARED = '../shared/fixtures/public';

interface ExpectedTensor {
  dtype: string;
  shape: number[];
  strides: number[];
  storage_offset: number;
  storage_numel: number;
  hex: string;
}
const expected = JSON.parse(fs.readFileSync(`${FIX}/expected.json`, 'utf8')) as {
  state_dict: Record<string, ExpectedTensor>;
  bare: Record<string, ExpectedTensor>;
  tied: string[];
  step: number;
  deflate_zip: Record<string, string>;
  pickles: Record<string, string>;
};
const TORCH_DTYPES: Record<string, DType> = {
  float32: 'F32', float16: 'F16', bfloat16: 'BF16', float64: 'F64', int64: 'I64',
  int32: 'I32', int16: 'I16', int8: 'I8', uint8: 'U8', bool: 'BOOL',
};

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'jukebox-ckpt-'));
});
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** Write `data` to a fresh temp file and return its path. */
function tmpFile(name: string, data: Uint8Array | string): string {
  const p = path.join(tmp, name);
  fs.writeFileSync(p, data);
  return p;
}

/** Run `fn`, expect a JukeboxError with `code`, and return its message. */
function errorOf(fn: () => unknown, code: JukeboxErrorCode): string {
  try {
    fn();
  } catch (e) {
    if (!isJukeboxError(e)) throw e;
    expect(e.code, e.message).toBe(code);
    return e.message;
  }
  throw new Error(`expected ${code}, but nothing was thrown`);
}

async function errorOfAsync(fn: () => Promise<unknown>, code: JukeboxErrorCode): Promise<string> {
  try {
    await fn();
  } catch (e) {
    if (!isJukeboxError(e)) throw e;
    expect(e.code, e.message).toBe(code);
    return e.message;
  }
  throw new Error(`expected ${code}, but nothing was thrown`);
}

// ---- hand-assembled pickles (protocol 2) -----------------------------------------------------

type Part = string | number[] | Uint8Array;
/** Concatenate opcodes: strings are latin-1 opcode text, arrays raw bytes. */
function pk(...parts: Part[]): Buffer {
  return Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : Buffer.from(p))));
}
const u32 = (n: number): number[] => [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24];
const str = (s: string): Buffer => {
  const b = Buffer.from(s, 'utf8');
  return pk('X', u32(b.length), b);
};
const int = (n: number): Buffer => pk('J', u32(n >>> 0));
const glob = (module: string, name: string): string => `c${module}\n${name}\n`;
const ints = (xs: number[]): Buffer => pk('(', ...xs.map(int), 't');
const PROTO = [0x80, 2];
const NEWFALSE = [0x89];
const NEWTRUE = [0x88];

/** A pickled _rebuild_tensor_v2 call on storage `key` (numel elements of `type`). */
function tensorPk(key: string, numel: number, size: number[], stride: number[], offset = 0, type = 'FloatStorage', hooks: Part = pk(glob('collections', 'OrderedDict'), ')R')): Buffer {
  return pk(
    glob('torch._utils', '_rebuild_tensor_v2'),
    '((', str('storage'), glob('torch', type), str(key), str('cpu'), int(numel), 't', 'Q',
    int(offset), ints(size), ints(stride), NEWFALSE, hooks, 't', 'R',
  );
}

/** {'hps': hps, 'model': model, 'step': 3} as a protocol-2 pickle; each argument is pickle code. */
function containerPk(model: Part, hps: Part = pk('}')): Buffer {
  return pk(PROTO, '}(', str('hps'), hps, str('model'), model, str('step'), int(3), 'u.');
}

/** OrderedDict of name -> pickled value. */
function stateDictPk(entries: [string, Part][]): Buffer {
  return pk(glob('collections', 'OrderedDict'), ')R(', ...entries.flatMap(([k, v]) => [str(k), v]), 'u');
}

const f32 = (xs: number[]): Buffer => Buffer.from(new Float32Array(xs).buffer);
const floats = (b: Buffer): number[] => Array.from({ length: b.length / 4 }, (_, i) => b.readFloatLE(4 * i));

function zipCheckpoint(name: string, pkl: Buffer, storages: Record<string, Uint8Array> = {}, extra: { name: string; data: Uint8Array }[] = []): string {
  return tmpFile(name, zipStore([
    { name: 'archive/data.pkl', data: pkl },
    ...Object.entries(storages).map(([k, data]) => ({ name: `archive/data/${k}`, data })),
    { name: 'archive/version', data: Buffer.from('3\n') },
    ...extra,
  ]));
}

const LEGACY_HEAD = pk(
  PROTO, [0x8a, 0x0a], Buffer.from('6cfc9c46f9206aa85019', 'hex'), '.',
  PROTO, 'M', [0xe9, 0x03], '.',
);
function legacyCheckpoint(name: string, pkl: Buffer, storages: [string, number, Uint8Array][] = [], littleEndian = true): string {
  const sysInfo = pk(PROTO, '}', str('little_endian'), littleEndian ? NEWTRUE : NEWFALSE, 's.');
  const keys = pk(PROTO, '](', ...storages.map(([k]) => str(k)), 'e.');
  const data = storages.flatMap(([, numel, bytes]) => {
    const h = Buffer.alloc(8);
    h.writeBigInt64LE(BigInt(numel));
    return [h, bytes];
  });
  return tmpFile(name, Buffer.concat([LEGACY_HEAD, sysInfo, pkl, keys, ...data]));
}

// ---- fixtures ---------------------------------------------------------------------------------

function checkAgainstExpected(file: string, exp: Record<string, ExpectedTensor>): Map<string, TensorRef> {
  const ck = readTorchCheckpoint(file);
  expect([...ck.stateDict.keys()]).toEqual(Object.keys(exp));
  for (const [name, e] of Object.entries(exp)) {
    const t = ck.stateDict.get(name)!;
    expect({ name: t.name, dtype: t.dtype, shape: t.shape, strides: t.strides, offset: t.storageOffset, numel: t.storage.numel }).toEqual({
      name, dtype: TORCH_DTYPES[e.dtype], shape: e.shape, strides: e.strides, offset: e.storage_offset, numel: e.storage_numel,
    });
    expect(readTensorData(file, t).toString('hex'), name).toBe(e.hex);
  }
  return ck.stateDict;
}

describe('torch checkpoints: generated fixtures (torch 1.13, see make_checkpoints.py)', () => {
  for (const kind of ['legacy', 'zip', 'zip64']) {
    const file = `${FIX}/small.${kind}.pth.tar`;
    it(`${kind}: every dtype, view and value matches torch`, () => {
      const sd = checkAgainstExpected(file, expected.state_dict);
      expect([...new Set([...sd.values()].map((t) => t.dtype))].sort()).toEqual(['BF16', 'BOOL', 'F16', 'F32', 'F64', 'I16', 'I32', 'I64', 'I8', 'U8']);
    });
    it(`${kind}: container fields, 'module.' prefix stripped, hps as plain data`, () => {
      const ck = readTorchCheckpoint(file);
      expect(ck.format).toBe(kind === 'legacy' ? 'legacy' : 'zip');
      expect(ck.path).toBe(file);
      expect(ck.topLevelKeys).toEqual(['hps', 'model', 'opt', 'step']);
      expect([...ck.stateDict.keys()].some((k) => k.startsWith('module.'))).toBe(false);
      expect(ck.stateDict.has('enc.weight')).toBe(true);
      expect(ck.step).toBe(7);
      expect(ck.placeholders).toEqual([]);
      expect(ck.hps).toEqual({
        levels: 3, downs_t: [3, 2, 2], name: 'small', lr: 0.00015, restore_prior: null, fp16: true,
        nested: { a: [1, 2, [3, 4]], b: null }, huge: '1180591620717411303424', neg: -5,
      });
    });
    it(`${kind}: tied tensors share one storage`, () => {
      const sd = readTorchCheckpoint(file).stateDict;
      const [a, b] = expected.tied.map((n) => sd.get(n)!);
      expect(a!.storage).toBe(b!.storage);
      expect(readTensorData(file, a!).equals(readTensorData(file, b!))).toBe(true);
      expect(sd.get('view.t')!.storage).not.toBe(a!.storage);
    });
  }

  it('views: contiguity, storage offset, gathering', () => {
    const sd = readTorchCheckpoint(`${FIX}/small.legacy.pth.tar`).stateDict;
    const t = sd.get('view.t')!;
    const s = sd.get('view.slice')!;
    expect([isContiguous(t), isContiguous(s), isContiguous(sd.get('enc.weight')!), isContiguous(sd.get('scalar')!), isContiguous(sd.get('empty')!)]).toEqual([false, false, true, true, true]);
    expect(s.storageOffset).toBe(8);
    // view.t is (arange(15).reshape(3,5) * 0.5).t(); view.slice is (arange(24).reshape(4,6) - 7)[1:, 2:5]
    expect(floats(readTensorData(`${FIX}/small.legacy.pth.tar`, t))).toEqual([0, 2.5, 5, 0.5, 3, 5.5, 1, 3.5, 6, 1.5, 4, 6.5, 2, 4.5, 7]);
    expect(floats(readTensorData(`${FIX}/small.legacy.pth.tar`, s))).toEqual([1, 2, 3, 7, 8, 9, 13, 14, 15]);
    expect(readTensorData(`${FIX}/small.legacy.pth.tar`, sd.get('empty')!).length).toBe(0);
    expect(sd.get('scalar')!.shape).toEqual([]);
  });

  it('streamTensorData: chunked bytes equal readTensorData', async () => {
    for (const file of [`${FIX}/small.legacy.pth.tar`, `${FIX}/small.zip.pth.tar`]) {
      for (const t of readTorchCheckpoint(file).stateDict.values()) {
        const chunks: Buffer[] = [];
        for await (const c of streamTensorData(file, t, 5)) chunks.push(c);
        if (isContiguous(t)) expect(chunks.every((c) => c.length <= 5)).toBe(true);
        expect(Buffer.concat(chunks).toString('hex'), t.name).toBe(expected.state_dict[t.name]!.hex);
      }
    }
    const t = readTorchCheckpoint(`${FIX}/small.zip.pth.tar`).stateDict.get('enc.weight')!;
    await errorOfAsync(() => streamTensorData(`${FIX}/small.zip.pth.tar`, t, 0).next(), 'ERR_INVALID_ARGUMENT');
  });

  it('a bare state dict (no container) loads', () => {
    checkAgainstExpected(`${FIX}/bare.legacy.pth.tar`, expected.bare);
    const ck = readTorchCheckpoint(`${FIX}/bare.legacy.pth.tar`);
    expect(ck.topLevelKeys).toEqual(['w', 'b']);
    expect(ck.hps).toBeUndefined();
    expect(ck.step).toBeUndefined();
  });
});

describe('torch checkpoints: the tiny Jukebox VQ-VAE', () => {
  const manifest = JSON.parse(fs.readFileSync('test/fixtures/manifest.json', 'utf8'));
  const shapes = manifest.files['vqvae/vqvae.legacy.pth.tar'].state_dict as Record<string, { shape: number[]; dtype: string }>;

  it('legacy and zip files load with 525 tensors whose shapes match the manifest', () => {
    for (const [file, format] of [[VQ_LEGACY, 'legacy'], [VQ_ZIP, 'zip']] as const) {
      const ck = readTorchCheckpoint(file);
      expect(ck.format).toBe(format);
      expect(ck.topLevelKeys).toEqual(['hps', 'model', 'opt', 'step']);
      expect(ck.step).toBe(0);
      expect(ck.stateDict.size).toBe(525);
      expect([...ck.stateDict.keys()]).toEqual(Object.keys(shapes));
      for (const [name, s] of Object.entries(shapes)) {
        expect([ck.stateDict.get(name)!.shape, ck.stateDict.get(name)!.dtype], name).toEqual([s.shape, TORCH_DTYPES[s.dtype]]);
      }
      expect(ck.stateDict.get('encoders.0.level_blocks.0.model.0.0.weight')!.storage.location).toBe(format === 'legacy' ? 'cuda:0' : 'cpu');
    }
  });

  it('hps is plain data and agrees with the manifest', () => {
    const hps = readTorchCheckpoint(VQ_LEGACY).hps!;
    expect(hps.levels).toBe(3);
    expect(hps.downs_t).toEqual([3, 2, 2]);
    expect(Object.keys(hps).length).toBeGreaterThan(150);
    for (const [k, v] of Object.entries(manifest.vqvae.hparams)) expect(hps[k], k).toEqual(v);
    expect(readTorchCheckpoint(VQ_ZIP).hps).toEqual(hps);
  });

  it('every tensor has identical bytes in the legacy and zip files', () => {
    const a = readTorchCheckpoint(VQ_LEGACY).stateDict;
    const b = readTorchCheckpoint(VQ_ZIP).stateDict;
    for (const [name, t] of a) {
      const x = readTensorData(VQ_LEGACY, t);
      expect(x.length).toBe(t.shape.reduce((n, d) => n * d, 4));
      expect(x.equals(readTensorData(VQ_ZIP, b.get(name)!)), name).toBe(true);
    }
    // spot values, so that "identical" cannot mean "both wrong the same way"
    const k = readTensorData(VQ_ZIP, b.get('bottleneck.level_blocks.2.k')!);
    expect(k.readFloatLE(0)).not.toBe(0);
    expect(Number.isFinite(k.readFloatLE(k.length - 4))).toBe(true);
  });
});

describe.skipIf(!fs.existsSync(SHARED))('torch checkpoints: ../shared Jukebox fixtures (when present)', () => {
  it('fp16 5b-like prior: F16 weights, legacy equals zip', () => {
    const leg = `${SHARED}/prior_5b_like/prior.fp16.legacy.pth.tar`;
    const zip = `${SHARED}/prior_5b_like/prior.fp16.zip.pth.tar`;
    const a = readTorchCheckpoint(leg).stateDict;
    const b = readTorchCheckpoint(zip).stateDict;
    expect(a.size).toBe(80);
    expect(a.get('prior.transformer._attn_mods.0.attn.c_attn.w')!.dtype).toBe('F16');
    expect([...a.values()].filter((t) => t.dtype === 'F16').length).toBe(24);
    for (const [n, t] of a) expect(readTensorData(leg, t).equals(readTensorData(zip, b.get(n)!)), n).toBe(true);
  });
  it('upsampler-like prior: x_emb and x_out share a storage', () => {
    const sd = readTorchCheckpoint(`${SHARED}/upsampler_like/prior.legacy.pth.tar`).stateDict;
    const tied = [...sd.values()].filter((t) => /^prior\.x_(emb|out)\.weight$/.test(t.name));
    expect(tied.length).toBe(2);
    expect(tied[0]!.storage).toBe(tied[1]!.storage);
  });
});

// ---- refusing code -----------------------------------------------------------------------------

describe('torch checkpoints: globals outside the allow-list never run', () => {
  const sentinel = (): string => path.join(tmp, 'pwned');
  const goodTensor = (): Buffer => tensorPk('0', 2, [2], [1]);
  const data = { '0': f32([1.5, -2]) };

  it('os.system REDUCE as the root (zip and legacy) is refused, naming it', () => {
    const pkl = pk(PROTO, glob('os', 'system'), str(`touch ${sentinel()}`), [0x85], 'R.');
    for (const file of [zipCheckpoint('root-os-system.pth.tar', pkl), legacyCheckpoint('root-os-system-legacy.pth.tar', pkl)]) {
      const msg = errorOf(() => readTorchCheckpoint(file), 'ERR_CHECKPOINT_GLOBAL');
      expect(msg).toContain('os.system');
      expect(msg).toContain(file);
      expect(msg).toContain('root');
    }
    expect(fs.existsSync(sentinel())).toBe(false);
  });

  it('builtins.eval inside the state dict is refused, naming the key', () => {
    const evil = pk(glob('builtins', 'eval'), str(`open(${JSON.stringify(sentinel())}, 'w')`), [0x85], 'R');
    const file = zipCheckpoint('sd-eval.pth.tar', containerPk(stateDictPk([['w', goodTensor()], ['module.evil', evil]])), data);
    const msg = errorOf(() => readTorchCheckpoint(file), 'ERR_CHECKPOINT_GLOBAL');
    expect(msg).toContain('builtins.eval');
    expect(msg).toContain("'module.evil'");
    expect(msg).toContain(file);
    expect(fs.existsSync(sentinel())).toBe(false);
  });

  it('posix.system via STACK_GLOBAL (protocol 4) in the state dict is refused', () => {
    const evil = pk([0x8c, 5], 'posix', [0x8c, 6], 'system', [0x93], [0x8c, 4], 'true', [0x85], 'R');
    const pkl = pk([0x80, 4], '}(', str('model'), '}(', str('x'), evil, 'uu.');
    const msg = errorOf(() => readTorchCheckpoint(zipCheckpoint('sd-posix.pth.tar', pkl)), 'ERR_CHECKPOINT_GLOBAL');
    expect(msg).toContain('posix.system');
    expect(msg).toContain("'x'");
  });

  it('INST and OBJ opcodes resolve through the same allow-list', () => {
    const inst = pk(PROTO, '(', str(`touch ${sentinel()}`), `ios\nsystem\n`, '.');
    expect(errorOf(() => readTorchCheckpoint(zipCheckpoint('inst.pth.tar', inst)), 'ERR_CHECKPOINT_GLOBAL')).toContain('os.system');
    const obj = pk(PROTO, '}(', str('model'), '}(', str('w'), '(', glob('subprocess', 'Popen'), str('id'), 'o', 'uu.');
    expect(errorOf(() => readTorchCheckpoint(zipCheckpoint('obj.pth.tar', obj)), 'ERR_CHECKPOINT_GLOBAL')).toContain('subprocess.Popen');
    expect(fs.existsSync(sentinel())).toBe(false);
  });

  it('a global hidden in tensor hooks, the state-dict metadata, a storage type or the model entry is refused', () => {
    const hooks = pk(glob('collections', 'OrderedDict'), ')R', int(0), glob('subprocess', 'Popen'), 's');
    const inHooks = containerPk(stateDictPk([['w', tensorPk('0', 2, [2], [1], 0, 'FloatStorage', hooks)]]));
    expect(errorOf(() => readTorchCheckpoint(zipCheckpoint('hooks.pth.tar', inHooks, data)), 'ERR_CHECKPOINT_GLOBAL')).toMatch(/subprocess\.Popen.*'w'/);

    const meta = pk(PROTO, stateDictPk([['w', goodTensor()]]), '}', str('_metadata'), glob('os', 'popen'), 's', 'b.');
    expect(errorOf(() => readTorchCheckpoint(zipCheckpoint('meta.pth.tar', meta, data)), 'ERR_CHECKPOINT_GLOBAL')).toMatch(/os\.popen.*metadata/);

    const storageType = containerPk(stateDictPk([['w', tensorPk('0', 2, [2], [1], 0, 'FloatStorage').toString('latin1').replace('ctorch\nFloatStorage\n', 'cos\nsystem\n')]]));
    expect(errorOf(() => readTorchCheckpoint(zipCheckpoint('stype.pth.tar', storageType, data)), 'ERR_CHECKPOINT_GLOBAL')).toContain('os.system');

    const model = containerPk(pk(glob('evil', 'Dict'), ')', [0x81], '(', str('w'), goodTensor(), 'u'));
    expect(errorOf(() => readTorchCheckpoint(zipCheckpoint('model.pth.tar', model, data)), 'ERR_CHECKPOINT_GLOBAL')).toMatch(/evil\.Dict.*'model'/);
  });

  it('a non-allowed global in hps stays an inert placeholder: listed, dropped, load continues', () => {
    const hps = pk(
      glob('jukebox.hparams', 'Hyperparams'), ')', [0x81], '(',
      str('levels'), int(3),
      str('dtype'), glob('numpy', 'dtype'), str('f4'), [0x85], 'R',
      'u',
    );
    const file = zipCheckpoint('hps-placeholder.pth.tar', containerPk(stateDictPk([['w', goodTensor()]]), hps), data);
    const ck = readTorchCheckpoint(file);
    expect(ck.placeholders).toEqual(['jukebox.hparams.Hyperparams', 'numpy.dtype']);
    expect(ck.hps).toEqual({ levels: 3 });
    expect(ck.step).toBe(3);
    expect(readTensorData(file, ck.stateDict.get('w')!).equals(data['0'])).toBe(true);
  });

  it('legacy container with a placeholder elsewhere and real storages loads', () => {
    const pkl = pk(PROTO, '}(', str('model'), stateDictPk([['module.w', goodTensor()]]), str('opt'), glob('torch.optim', 'Adam'), 'u.');
    const file = legacyCheckpoint('legacy-opt.pth.tar', pkl, [['0', 2, data['0']]]);
    const ck = readTorchCheckpoint(file);
    expect(ck.placeholders).toEqual(['torch.optim.Adam']);
    expect(readTensorData(file, ck.stateDict.get('w')!).equals(data['0'])).toBe(true);
  });
});

// ---- damaged and foreign files -----------------------------------------------------------------

describe('torch checkpoints: damaged files', () => {
  const cut = (src: string, at: number, name: string): string => tmpFile(name, fs.readFileSync(src).subarray(0, at));

  it('legacy cut inside the pickles -> ERR_CHECKPOINT_TRUNCATED naming the file', () => {
    for (const at of [100, 5_000, 100_000, 139_480]) {
      const file = cut(VQ_LEGACY, at, `vq-legacy-cut-${at}.pth.tar`);
      expect(errorOf(() => readTorchCheckpoint(file), 'ERR_CHECKPOINT_TRUNCATED')).toContain(file);
    }
  });

  it('legacy cut inside storage data -> ERR_CHECKPOINT_TRUNCATED naming the storage and tensor', () => {
    const size = fs.statSync(VQ_LEGACY).size;
    for (const at of [size - 1, size - 100_000, 160_000]) {
      const file = cut(VQ_LEGACY, at, `vq-legacy-data-cut-${at}.pth.tar`);
      const msg = errorOf(() => readTorchCheckpoint(file), 'ERR_CHECKPOINT_TRUNCATED');
      expect(msg).toContain(file);
      expect(msg).toMatch(/storage \d+ \(tensor [\w.]+\)/);
    }
  });

  it('zip cut anywhere loses its central directory -> ERR_CHECKPOINT_TRUNCATED', () => {
    const size = fs.statSync(VQ_ZIP).size;
    for (const at of [size - 1, size - 30, size - 5_000, 700_000, 1_000]) {
      const file = cut(VQ_ZIP, at, `vq-zip-cut-${at}.pth.tar`);
      const msg = errorOf(() => readTorchCheckpoint(file), 'ERR_CHECKPOINT_TRUNCATED');
      expect(msg).toContain(file);
      expect(msg).toContain('end-of-central-directory');
    }
  });

  it('zip whose central directory offset points outside the file -> ERR_CHECKPOINT_FORMAT', () => {
    // torch always writes ZIP64 end records, which take precedence over the classic one.
    const b = Buffer.from(fs.readFileSync(VQ_ZIP));
    const eocd64 = b.lastIndexOf(Buffer.from([0x50, 0x4b, 0x06, 0x06]));
    expect(eocd64).toBeGreaterThan(0);
    b.writeBigUInt64LE(BigInt(b.length), eocd64 + 48);
    const file = tmpFile('vq-zip-bad-cd.pth.tar', b);
    expect(errorOf(() => readTorchCheckpoint(file), 'ERR_CHECKPOINT_FORMAT')).toContain('central directory lies outside the file');
  });

  it('zip missing a storage entry -> ERR_CHECKPOINT_FORMAT naming the tensor', () => {
    const entries = [...readZipEntries(fs.readFileSync(`${FIX}/small.zip.pth.tar`))].filter(([n]) => !n.endsWith('/data/1'));
    const file = tmpFile('missing-storage.pth.tar', zipStore(entries.map(([name, data]) => ({ name, data }))));
    expect(errorOf(() => readTorchCheckpoint(file), 'ERR_CHECKPOINT_FORMAT')).toMatch(/storage 1 \(tensor enc\.bias\).*no small\.zip\.pth\/data\/1/);
  });

  it('legacy numel header disagreeing with the pickle -> ERR_CHECKPOINT_FORMAT', () => {
    const ck = readTorchCheckpoint(VQ_LEGACY);
    const t = ck.stateDict.get('encoders.0.level_blocks.0.model.0.0.bias')!;
    const b = Buffer.from(fs.readFileSync(VQ_LEGACY));
    b.writeBigInt64LE(33n, t.storage.fileOffset - 8);
    const file = tmpFile('vq-legacy-numel.pth.tar', b);
    expect(errorOf(() => readTorchCheckpoint(file), 'ERR_CHECKPOINT_FORMAT')).toMatch(/tensor encoders\.0\.level_blocks\.0\.model\.0\.0\.bias.*33 elements/);
  });

  it('a storage shorter than its tensor -> ERR_CHECKPOINT_FORMAT naming the tensor', () => {
    // Patch the first tensor's size (32, 1, 4) to (33, 1, 4): its storage has 128 elements.
    const b = Buffer.from(fs.readFileSync(VQ_LEGACY));
    const name = 'encoders.0.level_blocks.0.model.0.0.weight';
    const at = b.indexOf(Buffer.from([0x4b, 32, 0x4b, 1, 0x4b, 4, 0x87]), b.indexOf(name));
    expect(at).toBeGreaterThan(0);
    b[at + 1] = 33;
    const file = tmpFile('vq-legacy-short-storage.pth.tar', b);
    const msg = errorOf(() => readTorchCheckpoint(file), 'ERR_CHECKPOINT_FORMAT');
    expect(msg).toContain(`tensor ${name}: storage shorter than its tensor`);
    expect(msg).toContain(file);

    // Same through a storage offset: 2 elements at offset 1 of a 2-element storage.
    const viaOffset = zipCheckpoint('short-offset.pth.tar', containerPk(stateDictPk([['w', tensorPk('0', 2, [2], [1], 1)]])), { '0': f32([1, 2]) });
    expect(errorOf(() => readTorchCheckpoint(viaOffset), 'ERR_CHECKPOINT_FORMAT')).toContain('tensor w: storage shorter than its tensor');
  });

  it('big-endian checkpoints are refused clearly', () => {
    const entries = [...readZipEntries(fs.readFileSync(`${FIX}/small.zip.pth.tar`))].map(([name, data]) => ({ name, data }));
    const big = tmpFile('big.pth.tar', zipStore([...entries, { name: 'small.zip.pth/byteorder', data: Buffer.from('big') }]));
    expect(errorOf(() => readTorchCheckpoint(big), 'ERR_CHECKPOINT_FORMAT')).toContain('big-endian');
    const little = tmpFile('little.pth.tar', zipStore([...entries, { name: 'small.zip.pth/byteorder', data: Buffer.from('little') }]));
    expect(readTorchCheckpoint(little).stateDict.size).toBe(16);
    const legacy = legacyCheckpoint('big-legacy.pth.tar', pk(PROTO, '}.'), [], false);
    expect(errorOf(() => readTorchCheckpoint(legacy), 'ERR_CHECKPOINT_FORMAT')).toContain('big-endian');
  });

  it('unsupported storage types are ERR_DTYPE', () => {
    const untyped = containerPk(stateDictPk([['w', tensorPk('0', 8, [2], [1], 0, 'UntypedStorage')]]));
    expect(errorOf(() => readTorchCheckpoint(zipCheckpoint('untyped.pth.tar', untyped, { '0': f32([1, 2]) })), 'ERR_DTYPE')).toContain('torch.UntypedStorage');
    const complex = containerPk(stateDictPk([['w', tensorPk('0', 1, [1], [1], 0, 'ComplexFloatStorage')]]));
    expect(errorOf(() => readTorchCheckpoint(zipCheckpoint('complex.pth.tar', complex, { '0': f32([1, 2]) })), 'ERR_DTYPE')).toContain('torch.ComplexFloatStorage');
  });

  it('files that are not checkpoints -> ERR_CHECKPOINT_FORMAT; missing file -> ERR_IO', () => {
    let seed = 12345;
    const random = Buffer.alloc(4096, 0).map(() => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 24));
    random[0] = 0x13;
    const cases: [string, Uint8Array | string][] = [
      ['random.pth.tar', random],
      ['pickle-like.pth.tar', Buffer.concat([Buffer.from([0x80, 0x02]), random])],
      ['text.pth.tar', 'this is not a checkpoint\n'],
      ['empty.pth.tar', ''],
      ['short-magic.pth.tar', LEGACY_HEAD.subarray(0, 8)],
      ['other.zip', zipStore([{ name: 'hello.txt', data: Buffer.from('hi') }])],
    ];
    for (const [name, bytes] of cases) {
      const file = tmpFile(name, bytes);
      const msg = errorOf(() => readTorchCheckpoint(file), 'ERR_CHECKPOINT_FORMAT');
      expect(msg).toContain(file);
      expect(msg).toContain('not a PyTorch checkpoint');
    }
    expect(errorOf(() => readTorchCheckpoint(path.join(tmp, 'nope.pth.tar')), 'ERR_IO')).toContain('nope.pth.tar');
  });

  it('huge and deeply nested values outside the state dict load (no recursion or spread limits)', () => {
    const n = 300_000;
    const depth = 100_000;
    const flat = pk(']', '(', Buffer.alloc(2 * n, 'K\x01', 'latin1'), 'e');
    const deep = pk(']'.repeat(depth + 1), glob('deep', 'Thing'), 'a'.repeat(depth + 1));
    // dag = [L39, L39], L39 = [L38, L38], ...: 40 pickle lines, 2^40 nodes if expanded
    const dag = pk(']q', [0], '0', ...Array.from({ length: 40 }, (_, i) => pk('(h', [i], 'h', [i], 'lq', [i + 1], '0')), 'h', [40]);
    const hps = pk('}(', str('flat'), flat, str('dag'), dag, str('levels'), int(2), str('__proto__'), int(1), 'u');
    const pkl = pk(PROTO, '}(', str('hps'), hps, str('model'), stateDictPk([['w', tensorPk('0', 2, [2], [1])]]), str('opt'), deep, 'u.');
    const ck = readTorchCheckpoint(zipCheckpoint('big-values.pth.tar', pkl, { '0': f32([1, 2]) }));
    expect((ck.hps!.flat as number[]).length).toBe(n);
    expect((ck.hps!.flat as number[])[n - 1]).toBe(1);
    expect(ck.hps!.levels).toBe(2);
    expect('dag' in ck.hps!).toBe(false); // too large to expand: dropped
    expect(Object.getPrototypeOf(ck.hps)).toBe(Object.prototype);
    expect(Object.keys(ck.hps!)).toEqual(['flat', 'levels', '__proto__']);
    expect(ck.placeholders).toEqual(['deep.Thing']);
  });

  it('random corruption never escapes as anything but a JukeboxError', () => {
    let seed = 99;
    const rand = (n: number): number => ((seed = (seed * 1664525 + 1013904223) >>> 0) % n);
    for (const src of [`${FIX}/small.legacy.pth.tar`, `${FIX}/small.zip.pth.tar`]) {
      const orig = fs.readFileSync(src);
      const file = path.join(tmp, `fuzz-${path.basename(src)}`);
      let failures = 0;
      for (let i = 0; i < 400; i++) {
        const b = Buffer.from(orig.subarray(0, i % 4 === 0 ? rand(orig.length) : orig.length));
        for (let k = 0; k < 1 + rand(4); k++) if (b.length > 0) b[rand(b.length)] = rand(256);
        fs.writeFileSync(file, b);
        try {
          readTorchCheckpoint(file);
        } catch (e) {
          if (!isJukeboxError(e)) throw e;
          expect(e.message).toContain(file);
          failures++;
        }
      }
      expect(failures).toBeGreaterThan(100); // the mutations do hit
    }
  });
});

describe('torch checkpoints: files over 4 GiB (sparse)', () => {
  it('finds storages past 4 GiB without reading the data', () => {
    const big = 1_300_000_000; // F32 elements: 5.2 GB
    const pkl = containerPk(stateDictPk([['big', tensorPk('0', big, [big], [1])], ['small', tensorPk('1', 3, [3], [1])]]));
    const file = legacyCheckpoint('sparse.pth.tar', pkl, []);
    // Append the storages by hand: header + (sparse) 5.2 GB, then header + 3 floats past 4 GiB.
    const fd = fs.openSync(file, 'r+');
    try {
      const keysAt = fs.statSync(file).size - pk(PROTO, '](', 'e.').length;
      const keys = pk(PROTO, '](', str('0'), str('1'), 'e.');
      fs.writeSync(fd, keys, 0, keys.length, keysAt);
      let pos = keysAt + keys.length;
      const header = (n: number): Buffer => { const h = Buffer.alloc(8); h.writeBigInt64LE(BigInt(n)); return h; };
      fs.writeSync(fd, header(big), 0, 8, pos);
      pos += 8 + big * 4;
      fs.writeSync(fd, header(3), 0, 8, pos);
      fs.writeSync(fd, f32([1, 2, 3]), 0, 12, pos + 8);
    } finally {
      fs.closeSync(fd);
    }
    const t0 = Date.now();
    const ck = readTorchCheckpoint(file);
    expect(Date.now() - t0).toBeLessThan(2_000);
    const small = ck.stateDict.get('small')!;
    expect(small.storage.fileOffset).toBeGreaterThan(2 ** 32);
    expect(floats(readTensorData(file, small))).toEqual([1, 2, 3]);
    expect(ck.stateDict.get('big')!.storage.nbytes).toBe(big * 4);
    expect(errorOf(() => readTensorData(file, ck.stateDict.get('big')!), 'ERR_OUT_OF_MEMORY')).toContain('streamTensorData');
    fs.rmSync(file);
  });
});

// ---- the unpickler on its own ------------------------------------------------------------------

describe('unpickle', () => {
  // What a caller might allow for plain data: sets and protocol-2 bytes.
  const resolveGlobal = (m: string, n: string): unknown =>
    (m === 'builtins' || m === '__builtin__') && (n === 'set' || n === 'frozenset')
      ? new PyCallable(`${m}.${n}`, (a) => new Set(a[0] as unknown[]))
      : m === '_codecs' && n === 'encode'
        ? new PyCallable('_codecs.encode', (a) => new Uint8Array(Buffer.from(a[0] as string, 'latin1')))
        : undefined;
  /** A comparable rendering: tuples, bytes, bigints and sets tagged. */
  const norm = (v: unknown): unknown => {
    if (v instanceof Map) return { dict: [...v].map(([k, x]) => [norm(k), norm(x)]) };
    if (isTuple(v)) return { tuple: v.map(norm) };
    if (Array.isArray(v)) return v.map(norm);
    if (v instanceof Set) return { set: [...v].map(norm) };
    if (v instanceof Uint8Array) return { bytes: Buffer.from(v).toString('hex') };
    if (typeof v === 'bigint') return { int: v.toString() };
    return v;
  };
  const want = {
    dict: [
      ['int', 5], ['neg', -1], ['i2', 1000], ['i4', -100000], ['big', { int: (2n ** 80n).toString() }], ['nbig', { int: (-(2n ** 70n)).toString() }],
      ['float', 2.5], ['inf', Infinity], ['str', 'h\u00e9llo \u2603'], ['esc', 'a\nb\\c\'d"'], ['bytes', { bytes: '00ff0a' }], ['none', null],
      ['t', true], ['f', false], ['tuple', { tuple: [1, 'x', { tuple: [] }] }], ['list', [[1], [], { tuple: [2] }]],
      ['set', { set: [3] }], ['frozen', { set: [4] }], [7, 'int key'], ['shared', [[1], [], { tuple: [2] }]],
    ],
  };

  for (const [proto, hex] of Object.entries(expected.pickles)) {
    it(`decodes Python's protocol ${proto}`, () => {
      const { value, end } = unpickle(Buffer.from(hex, 'hex'), 0, { label: `p${proto}`, resolveGlobal });
      expect(end).toBe(hex.length / 2);
      expect(norm(value)).toEqual(want);
      const m = value as Map<unknown, unknown>;
      expect(m.get('shared')).toBe(m.get('list')); // memo keeps identity
    });
  }

  it('without an allow-list, globals and calls stay inert records', () => {
    const { value } = unpickle(Buffer.from(expected.pickles['2']!, 'hex'), 0, { label: 'p2' });
    const s = (value as Map<string, unknown>).get('set');
    expect(s).toBeInstanceOf(PickleCall);
    expect((s as PickleCall).global).toEqual(new PickleGlobal('__builtin__', 'set')) // protocols < 3 use Python 2 names;
    expect((s as PickleCall).args).toEqual([[3]]);
  });

  it('malformed input -> JukeboxError with the label and byte offset', () => {
    const cases: [string, Buffer, JukeboxErrorCode, RegExp][] = [
      ['unknown opcode', pk(PROTO, [0xff]), 'ERR_CHECKPOINT_FORMAT', /unknown pickle opcode 0xff at byte 2/],
      ['stack underflow', pk(PROTO, 'R.'), 'ERR_CHECKPOINT_FORMAT', /stack underflow at byte 2/],
      ['memo miss', pk(PROTO, 'h', [5], '.'), 'ERR_CHECKPOINT_FORMAT', /memo key 5 is not defined/],
      ['no mark', pk(PROTO, 't.'), 'ERR_CHECKPOINT_FORMAT', /MARK expected/],
      ['open mark at STOP', pk(PROTO, '(N.'), 'ERR_CHECKPOINT_FORMAT', /unclosed MARK/],
      ['extension code', pk(PROTO, [0x82, 1], '.'), 'ERR_CHECKPOINT_FORMAT', /EXT1/],
      ['protocol 6', pk([0x80, 6], 'N.'), 'ERR_CHECKPOINT_FORMAT', /protocol 6/],
      ['no STOP', pk(PROTO, 'N'), 'ERR_CHECKPOINT_TRUNCATED', /at byte 3/],
      ['length past end', pk(PROTO, 'X', u32(1000), 'abc'), 'ERR_CHECKPOINT_TRUNCATED', /BINUNICODE/],
      ['absurd length', pk([0x80, 4], [0x8e], [255, 255, 255, 255, 255, 255, 255, 127]), 'ERR_CHECKPOINT_TRUNCATED', /BINBYTES8/],
      ['persistent id not expected', pk(PROTO, 'NQ.'), 'ERR_CHECKPOINT_FORMAT', /persistent id/],
      ['BUILD on a number', pk(PROTO, 'K', [1], 'Nb.'), 'ERR_CHECKPOINT_FORMAT', /BUILD on a number/],
      ['call a number', pk(PROTO, 'K', [1], ')R.'), 'ERR_CHECKPOINT_FORMAT', /not callable/],
      ['append to a tuple', pk(PROTO, ')Na.'), 'ERR_CHECKPOINT_FORMAT', /APPEND\(S\) on a tuple/],
      ['bad INT text', pk('I12x\n.'), 'ERR_CHECKPOINT_FORMAT', /bad INT literal/],
    ];
    for (const [what, bytes, code, re] of cases) {
      const msg = errorOf(() => unpickle(bytes, 0, { label: 'test.pkl' }), code);
      expect(msg, what).toMatch(re);
      expect(msg, what).toContain('test.pkl');
    }
  });
});

// ---- zip ---------------------------------------------------------------------------------------

describe('zip', () => {
  it('reads DEFLATE and STORED entries written by Python', () => {
    const m = readZipEntries(fs.readFileSync(`${FIX}/deflate.zip`));
    expect([...m.keys()]).toEqual(['a/deflated.txt', 'a/stored.bin']);
    expect(m.get('a/deflated.txt')!.toString()).toBe(expected.deflate_zip['a/deflated.txt']);
    expect(m.get('a/stored.bin')!.toString('hex')).toBe(expected.deflate_zip['a/stored.bin']);
  });

  it('zipStore round-trips, with correct CRC-32', () => {
    expect(crc32(Buffer.from('123456789'))).toBe(0xcbf43926); // the standard check value
    const entries = [
      { name: 'x.npy', data: Buffer.from([1, 2, 3]) },
      { name: 'empty', data: new Uint8Array(0) },
      { name: 'dir/ünï.bin', data: new Uint8Array(Buffer.alloc(70_000, 7)) },
    ];
    const zip = zipStore(entries);
    const m = readZipEntries(zip);
    expect([...m.keys()]).toEqual(entries.map((e) => e.name));
    for (const e of entries) expect(Buffer.compare(m.get(e.name)!, e.data), e.name).toBe(0);
    expect(() => zipStore([entries[0]!, entries[0]!])).toThrow(/duplicate/);
  });

  it('a CRC mismatch is ERR_CHECKPOINT_FORMAT', () => {
    const zip = zipStore([{ name: 'a', data: Buffer.from('hello') }]);
    zip[30 + 1] = 'x'.charCodeAt(0); // first data byte after the 30-byte header and 1-byte name
    expect(errorOf(() => readZipEntries(zip, 'mem.zip'), 'ERR_CHECKPOINT_FORMAT')).toMatch(/mem\.zip: .*CRC/);
  });
});

// ---- safetensors -------------------------------------------------------------------------------

describe('safetensors', () => {
  async function* chunked(b: Buffer, n: number): AsyncGenerator<Uint8Array> {
    for (let i = 0; i < b.length; i += n) yield b.subarray(i, i + n);
  }
  const f16 = Buffer.from([0x00, 0x3c, 0x00, 0xc0, 0x00, 0x7c]); // 1, -2, inf
  const i64 = Buffer.alloc(16);
  i64.writeBigInt64LE(-5n, 0);
  i64.writeBigInt64LE(2n ** 62n, 8);

  it('round trip: header, metadata, alignment, bytes; no temp file left', async () => {
    const file = path.join(tmp, 'rt.safetensors');
    await writeSafetensors(file, [
      { name: 'h', dtype: 'F16', shape: [3], source: () => chunked(f16, 4), nbytes: 6 },
      { name: 'w', dtype: 'F32', shape: [2, 2], source: f32([1, 2, 3, 4]), nbytes: 16 },
      { name: 'flag', dtype: 'BOOL', shape: [], source: Buffer.from([1]), nbytes: 1 },
      { name: 'none', dtype: 'BF16', shape: [0, 4], source: new Uint8Array(0), nbytes: 0 },
      { name: 'ids', dtype: 'I64', shape: [2], source: () => chunked(i64, 3), nbytes: 16 },
    ], { format: 'pt', note: 'ü' });
    expect(fs.existsSync(`${file}.tmp`)).toBe(false);
    const h = readSafetensorsHeader(file);
    expect(h.dataOffset % 8).toBe(0);
    expect(h.metadata).toEqual({ format: 'pt', note: 'ü' });
    expect([...h.tensors.keys()]).toEqual(['ids', 'w', 'h', 'none', 'flag']); // widest dtype first
    expect(h.tensors.get('w')).toEqual({ dtype: 'F32', shape: [2, 2], begin: 16, end: 32 });
    for (const t of h.tensors.values()) expect(t.begin % (t.end > t.begin ? (t.end - t.begin) / t.shape.reduce((a, b) => a * b, 1) : 1)).toBe(0);
    expect(readSafetensorsTensor(h, 'w').equals(f32([1, 2, 3, 4]))).toBe(true);
    expect(readSafetensorsTensor(h, 'h').equals(f16)).toBe(true);
    expect(readSafetensorsTensor(h, 'ids').equals(i64)).toBe(true);
    expect(readSafetensorsTensor(h, 'flag')[0]).toBe(1);
    expect(readSafetensorsTensor(h, 'none').length).toBe(0);
    expect(fs.statSync(file).size).toBe(h.dataOffset + 39);
    errorOf(() => readSafetensorsTensor(h, 'nope'), 'ERR_MISSING_KEY');
  });

  it('converts a torch checkpoint by streaming, bytes preserved', async () => {
    const src = `${FIX}/small.legacy.pth.tar`;
    const ck = readTorchCheckpoint(src);
    const file = path.join(tmp, 'small.safetensors');
    await writeSafetensors(file, [...ck.stateDict.values()].map((t) => ({
      name: t.name, dtype: t.dtype, shape: t.shape, nbytes: tensorNbytes(t), source: () => streamTensorData(src, t, 7),
    })), { source: 'small.legacy.pth.tar' });
    const h = readSafetensorsHeader(file);
    expect(h.tensors.size).toBe(16);
    for (const [name, e] of Object.entries(expected.state_dict)) {
      expect(h.tensors.get(name)!.shape).toEqual(e.shape);
      expect(readSafetensorsTensor(h, name).toString('hex'), name).toBe(e.hex);
    }
  });

  it('a failed write leaves neither a half file nor a temp file, and keeps an existing file', async () => {
    const file = tmpFile('fail.safetensors', 'previous');
    const msg = await errorOfAsync(() => writeSafetensors(file, [
      { name: 'ok', dtype: 'F32', shape: [1], source: f32([1]), nbytes: 4 },
      { name: 'short', dtype: 'F32', shape: [4], source: () => chunked(f32([1, 2]), 4), nbytes: 16 },
    ]), 'ERR_INVALID_ARGUMENT');
    expect(msg).toMatch(/short: source yielded 8 bytes, expected 16/);
    expect(fs.readFileSync(file, 'utf8')).toBe('previous');
    expect(fs.existsSync(`${file}.tmp`)).toBe(false);

    async function* boom(): AsyncGenerator<Uint8Array> {
      yield new Uint8Array(4);
      throw new Error('disk on fire');
    }
    const other = path.join(tmp, 'fail2.safetensors');
    expect(await errorOfAsync(() => writeSafetensors(other, [{ name: 'x', dtype: 'F32', shape: [2], source: boom, nbytes: 8 }]), 'ERR_IO')).toContain('disk on fire');
    expect(fs.existsSync(other) || fs.existsSync(`${other}.tmp`)).toBe(false);
    await errorOfAsync(() => writeSafetensors(other, [{ name: 'x', dtype: 'F32', shape: [3], source: f32([1, 2]), nbytes: 12 }]), 'ERR_INVALID_ARGUMENT');
  });

  /** A safetensors file from a raw header (object or text) and a data region of `dataLen` bytes. */
  function rawFile(name: string, header: object | string, dataLen: number, lengthField?: bigint): string {
    const json = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(lengthField ?? BigInt(json.length));
    return tmpFile(name, Buffer.concat([len, json, Buffer.alloc(dataLen, 1)]));
  }

  it('corrupt headers -> clear errors naming the file and tensor', () => {
    const ok = { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'U8', shape: [4], data_offsets: [8, 12] } };
    expect(readSafetensorsHeader(rawFile('ok.safetensors', ok, 12)).tensors.size).toBe(2);
    const cases: [string, string, JukeboxErrorCode, RegExp][] = [
      ['len.safetensors', rawFile('len.safetensors', ok, 12, 1n << 40n), 'ERR_CHECKPOINT_TRUNCATED', /header length 1099511627776 is larger than the file/],
      ['json.safetensors', rawFile('json.safetensors', '{"a": {', 0), 'ERR_CHECKPOINT_FORMAT', /not valid JSON/],
      ['array.safetensors', rawFile('array.safetensors', '[1]', 0), 'ERR_CHECKPOINT_FORMAT', /not a JSON object/],
      ['overlap.safetensors', rawFile('overlap.safetensors', { ...ok, b: { dtype: 'U8', shape: [4], data_offsets: [6, 10] } }, 12), 'ERR_CHECKPOINT_FORMAT', /tensors a and b overlap/],
      ['range.safetensors', rawFile('range.safetensors', { ...ok, b: { dtype: 'U8', shape: [4], data_offsets: [8, 12] } }, 10), 'ERR_CHECKPOINT_TRUNCATED', /tensor b: data ends at byte/],
      ['size.safetensors', rawFile('size.safetensors', { ...ok, a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, 12), 'ERR_CHECKPOINT_FORMAT', /tensor a: data_offsets span 8 bytes but F32\[3\] needs 12/],
      ['order.safetensors', rawFile('order.safetensors', { a: { dtype: 'U8', shape: [0], data_offsets: [8, 0] } }, 12), 'ERR_CHECKPOINT_FORMAT', /tensor a: bad data_offsets/],
      ['shape.safetensors', rawFile('shape.safetensors', { a: { dtype: 'U8', shape: [-1], data_offsets: [0, 0] } }, 0), 'ERR_CHECKPOINT_FORMAT', /tensor a: bad shape/],
      ['dtype.safetensors', rawFile('dtype.safetensors', { a: { dtype: 'F8_E4M3', shape: [1], data_offsets: [0, 1] } }, 1), 'ERR_DTYPE', /tensor a: unsupported dtype "F8_E4M3"/],
      ['meta.safetensors', rawFile('meta.safetensors', { __metadata__: { n: 1 } }, 0), 'ERR_CHECKPOINT_FORMAT', /__metadata__ value for "n" is not a string/],
      ['tiny.safetensors', tmpFile('tiny.safetensors', Buffer.from([1, 2, 3])), 'ERR_CHECKPOINT_TRUNCATED', /too short/],
    ];
    for (const [name, file, code, re] of cases) {
      const msg = errorOf(() => readSafetensorsHeader(file), code);
      expect(msg, name).toMatch(re);
      expect(msg, name).toContain(name);
    }
  });

  it('a truncated file names the tensor that no longer fits', async () => {
    const file = path.join(tmp, 'cut.safetensors');
    await writeSafetensors(file, [
      { name: 'a', dtype: 'F32', shape: [4], source: f32([1, 2, 3, 4]), nbytes: 16 },
      { name: 'b', dtype: 'F32', shape: [2], source: f32([5, 6]), nbytes: 8 },
    ]);
    fs.truncateSync(file, fs.statSync(file).size - 1);
    expect(errorOf(() => readSafetensorsHeader(file), 'ERR_CHECKPOINT_TRUNCATED')).toMatch(/cut\.safetensors: tensor b: data ends/);
  });
});
