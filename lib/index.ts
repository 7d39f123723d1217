/**
 * jukebox-node: OpenAI Jukebox in Node.js over a native C++ engine.
 */
export { JukeboxError, isJukeboxError, type JukeboxErrorCode } from './errors.js';
export { loadVQVAE, VQVAE, type LoadVQVAEOptions, type EncodeOptions, type RunOptions, type Progress, type BatchCodes } from './vqvae/vqvae.js';
export type { VQVAEHparams } from './vqvae/hparams.js';
export { loadJukebox, Jukebox, type GenerateOptions, type GenerateResult, type GenerateProgress, type LoadJukeboxOptions } from './generate/generate.js';
export { readModelSet, defaultModelDir, defaultModelSet, MODEL_SET_FORMAT, type ModelSet, type ModelSetDefaults } from './model-set.js';
export { loadPrior, Prior, type LoadPriorOptions, type WindowConditioning, type WindowSampleInput, type WindowForwardInput, type SampleInput, type SampleOutput } from './prior/prior.js';
export { convertCheckpoint, type ConvertOptions, type ConvertResult } from './convert.js';
export { modelInfo, type ModelInfo } from './info.js';
export { doctorReport, formatDoctor, type DoctorReport } from './doctor.js';
export { preset, PRESET_NAMES, type PresetName, type Hparams } from './hparams/presets.js';
export { loadAudio, writeAudio, type LoadedAudio } from './audio/decode.js';
export { readNpz, writeNpz, type NpyArray } from './npz.js';
export { readTorchCheckpoint, readSafetensorsHeader, type TorchCheckpoint, type TensorRef } from './checkpoint/index.js';
export { backendInfo, resolveBackend, engineBackend, isBackend, BACKENDS, type BackendChoice, type Backend, type ResolvedBackend, type BackendInfo, type CudaDeviceInfo } from './backend.js';
export { enqueueGeneration, runWorker, waitForJobs, GenerationQueue, type EnqueueGenerationOptions, type EnqueuedRun, type RunWorkerOptions, type WorkerEvent, type QueueJobStatus, type QueueJobProgress, type GenerationJobResult } from './queue/index.js';
