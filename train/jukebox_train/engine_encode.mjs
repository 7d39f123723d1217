// Encodes WAV files with the engine (the package's native VQ-VAE): much faster than PyTorch
// on a CPU, and the same codes (the export parity test checks it). Used by
// `jukebox-train codes --engine`. Arguments: VQVAE.safetensors, then pairs of input WAV and
// output .npz (int16 arrays l0, l1, ... as the training code reads them). Long tracks are
// encoded in chunks of whole top-level frames, like the PyTorch path.
import { renameSync } from 'node:fs';
const { loadVQVAE, loadAudio, writeNpz } = await import(new URL('../../dist/index.js', import.meta.url).href);

const [vqvaePath, ...pairs] = process.argv.slice(2);
const chunkSeconds = Number(process.env.JUKEBOX_ENCODE_CHUNK_SECONDS ?? 30);
const vq = await loadVQVAE(vqvaePath);
try {
  const top = vq.hopLengths[vq.levels - 1];
  const chunk = Math.floor((chunkSeconds * vq.sampleRate) / top) * top;
  for (let i = 0; i < pairs.length; i += 2) {
    const { samples } = await loadAudio(pairs[i], { sampleRate: vq.sampleRate });
    const x = samples.subarray(0, Math.floor(samples.length / top) * top);
    const parts = Array.from({ length: vq.levels }, () => []);
    for (let s = 0; s < x.length; s += chunk) {
      const codes = await vq.encode([x.subarray(s, Math.min(x.length, s + chunk))]);
      codes.forEach((c, l) => parts[l].push(c[0]));
    }
    const arrays = {};
    parts.forEach((p, l) => {
      const n = p.reduce((a, c) => a + c.length, 0);
      const data = new Int16Array(n);
      let o = 0;
      for (const c of p) {
        data.set(c, o);
        o += c.length;
      }
      arrays[`l${l}`] = { dtype: 'int16', shape: [n], data };
    });
    writeNpz(pairs[i + 1] + '.tmp', arrays);
    renameSync(pairs[i + 1] + '.tmp', pairs[i + 1]);
    process.stdout.write(`${pairs[i + 1]}\n`);
  }
} finally {
  vq.dispose();
}
