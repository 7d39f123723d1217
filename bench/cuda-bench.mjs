// npm run bench:cuda: the CUDA decode-step benchmark (cuda/bench/decode_bench.cu, built by
// npm run build:cuda into build/cuda/jukebox-cuda-bench) where a GPU is present; elsewhere it
// says why it cannot run. Extra arguments go to the benchmark (the stack depth, default 72).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { backendInfo } from '../dist/index.js';
import { packageRoot } from '../dist/native.js';

const exe = join(packageRoot, 'build', 'cuda', 'jukebox-cuda-bench');
const cuda = backendInfo().cuda;
const device = cuda.devices.find((d) => d.supported);
if (!cuda.libraryLoaded || !device) {
  console.log(`bench:cuda: nothing to measure here: ${cuda.reason ?? 'no supported CUDA device'}`);
  process.exit(0);
}
if (!existsSync(exe)) {
  console.error(`bench:cuda: ${exe} is missing: run npm run build:cuda first`);
  process.exit(1);
}
const r = spawnSync(exe, process.argv.slice(2), { stdio: 'inherit', env: { ...process.env, CUDA_VISIBLE_DEVICES: String(device.index) } });
process.exit(r.status ?? 1);
