/**
 * `jukebox` command line. Every command prints a one-line error and exits non-zero on
 * failure; progress bars appear on stderr for anything that runs over a second.
 */
import { type Backend } from '../backend.js';
import { Command, Option } from 'commander';
import { readFileSync } from 'node:fs';
import { JukeboxError } from '../errors.js';
import { PRESET_NAMES } from '../hparams/presets.js';
import { WEIGHT_DTYPES, type WeightDtype } from '../checkpoint/dtype-convert.js';
import { doctorReport, formatDoctor } from '../doctor.js';
import { formatInfo, modelInfo } from '../info.js';
import { packageRoot } from '../native.js';
import { convertCommand, decodeCommand, encodeCommand, generateCommand, samplingArgs, scoreCommand, type ScoreArgs } from './commands.js';
import { join } from 'node:path';
import { exploreCommand } from './explore.js';
import { addQueueCommands } from './queue-commands.js';
import { addOutputOptions, addSamplingOptions, backendOption, intArg, levelsArg } from './options.js';

export function buildProgram(log: (s: string) => void = (s) => process.stdout.write(s + '\n')): Command {
  const version = (JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as { version: string }).version;
  const program = new Command('jukebox')
    .description('Run OpenAI Jukebox models (and models trained with its recipe) from Node.js.')
    .version(version)
    .showHelpAfterError('(run with --help for usage)');

  program
    .command('encode')
    .description('encode audio (WAV, FLAC, OGG, MP3) to VQ-VAE codes in a NumPy .npz (int32 arrays level_0.. of shape (batch, T))')
    .argument('<input...>', 'audio file(s); several files make a batch')
    .requiredOption('--vqvae <file>', 'VQ-VAE (.safetensors from "jukebox convert", or the original .pth.tar)')
    .requiredOption('-o, --output <file>', 'output .npz')
    .option('--levels <list>', 'levels to encode, e.g. 0,1,2 (default: all)', levelsArg)
    .addOption(backendOption())
    .action(async (inputs: string[], o: { vqvae: string; output: string; levels?: number[]; backend: Backend }) => {
      await encodeCommand({ inputs, vqvae: o.vqvae, output: o.output, levels: o.levels, backend: o.backend }, log);
    });

  program
    .command('decode')
    .description('decode the codes of one level to audio (a batch of N writes OUT_0.wav .. OUT_{N-1}.wav)')
    .argument('<codes>', '.npz with an array level_L of shape (batch, T) or (T,)')
    .requiredOption('--vqvae <file>', 'VQ-VAE (.safetensors or .pth.tar)')
    .requiredOption('--level <L>', 'which level to decode', intArg('--level'))
    .requiredOption('-o, --output <file>', 'output .wav')
    .addOption(new Option('--format <fmt>', 'WAV sample format: 16-bit PCM (clamped to [-1, 1]) or float32').choices(['s16', 'f32']).default('s16'))
    .addOption(backendOption())
    .action(async (codes: string, o: { vqvae: string; level: number; output: string; format: 's16' | 'f32'; backend: Backend }) => {
      await decodeCommand({ codes, ...o }, log);
    });

  program
    .command('convert')
    .description('convert an original .pth.tar checkpoint to .safetensors with its hyperparameters in the header (nothing in the checkpoint is executed)')
    .argument('<input>', 'original checkpoint (.pth.tar, legacy or zip torch format), or a converted .safetensors with --dtype')
    .requiredOption('-o, --output <file>', 'output .safetensors')
    .addOption(new Option('--preset <name>', 'official hyperparameter set').choices(PRESET_NAMES))
    .option('--config <file>', 'JSON of hyperparameters under the original names; may set "preset"; wins over the checkpoint\'s own hps')
    .option('--vqvae <file>', 'for priors: the converted VQ-VAE the prior was trained with')
    .option('--artist-ids <file>', 'for priors: the original artist id file (ids/v2_artist_ids.txt or v3_...), stored in the output')
    .option('--genre-ids <file>', 'for priors: the original genre id file, stored in the output')
    .addOption(
      new Option('--dtype <dtype>', "weights' dtype in the output (default: as stored): tensors of 2+ dimensions take it, vectors keep theirs; f32 widens all. int8: a prior's transformer matrices and x_out only, weight-only, symmetric per output channel with F32 scales stored beside each as <key>.__scale; embeddings, vectors, the upsampler's conditioner convs and every VQ-VAE tensor stay as stored (the CPU engine runs int8; CUDA does not yet). Also takes a converted .safetensors, to change only its dtype")
        .choices(WEIGHT_DTYPES),
    )
    .action(async (input: string, o: { output: string; preset?: string; config?: string; vqvae?: string; artistIds?: string; genreIds?: string; dtype?: WeightDtype }) => {
      await convertCommand({ input, ...o }, log);
    });

  const generate = program
    .command('generate')
    .description('generate music top-down: sample the top level, upsample, decode to WAV (codes saved after every window; --resume continues)')
    .option('--model <dir>', 'model folder (model.json naming a VQ-VAE and its priors); default: the model shipped in the package (models/default)')
    .option('--vqvae <file>', 'the VQ-VAE (.safetensors), instead of --model')
    .option('--top <file>', 'top-level prior (.safetensors)')
    .option('--upsampler-1 <file>', 'level-1 upsampler (.safetensors)')
    .option('--upsampler-0 <file>', 'level-0 upsampler (.safetensors)')
    .requiredOption('-o, --output <dir>', 'output folder');
  addSamplingOptions(generate, {
    int: intArg,
    samples: 'number of samples',
    minSamples: 0,
    seed: 'random seed (same seed and inputs, same codes)',
    levels: 'levels to sample, e.g. 2 for the top only (default: all given)',
    prompt: 'continue from this audio (primed mode)',
    codes: 'continue from these codes (level_L arrays, e.g. from "jukebox encode" or codes_level_L.npz); with --levels 1,0: upsample them',
  });
  addOutputOptions(generate.option('--resume', 'continue an interrupted run from the codes in --output'))
    .addOption(backendOption())
    .action(async (o: Record<string, unknown>) => {
      const ac = new AbortController();
      const stop = () => ac.abort();
      process.once('SIGINT', stop);
      try {
        await generateCommand(
          {
            model: o.model as string | undefined,
            vqvae: o.vqvae as string | undefined,
            priors: [o.upsampler0 as string | undefined, o.upsampler1 as string | undefined, o.top as string | undefined],
            ...samplingArgs(o),
            resume: o.resume === true,
            backend: o.backend as Backend,
          },
          log,
          ac.signal,
        );
      } catch (e) {
        if (e instanceof JukeboxError && e.code === 'ERR_ABORTED') {
          throw new JukeboxError('ERR_ABORTED', `stopped; the codes of every finished window are in ${o.output as string}: run the same command with --resume to continue`);
        }
        throw e;
      } finally {
        process.removeListener('SIGINT', stop);
      }
    });

  addQueueCommands(program, log); // worker, submit (lib/cli/queue-commands.ts)

  program
    .command('score')
    .description("a prior's bits per token on given codes (teacher forcing) in one of three ways, optionally with every position's logits")
    .usage('CODES --prior P.safetensors --vqvae V.safetensors [--labels y.npy] [--upper U.npy] [--mode forward|cached|chunked] [--prefix N] [--chunk C] [--dump-logits OUT.npy]')
    .addHelpText(
      'after',
      [
        '',
        'Forms:',
        '  jukebox score CODES --prior P --vqvae V [...]         music codes, as "jukebox encode" or the original write them;',
        '                                                        a lyric model\'s lyric tokens come from --labels',
        '  jukebox score PRIOR --inputs X.npz [--vqvae V] [...]  the older form, in the transformer\'s own tokens',
        '                                                        (--mode forward|sample|primed, --prefix in transformer positions)',
        '',
        "CODES must be one window: exactly n_ctx codes per row, each in [0, the VQ-VAE's l_bins).",
        'Without --labels every row gets artist 0 and genre 0 ("unknown"), offset 0, a song as long as',
        "the window (at least the prior's min_duration) and no lyrics; a note says so.",
        '--dump-logits covers the whole transformer sequence: for a combined lyric model (1b_lyrics)',
        'its lyric positions come first and bins = n_vocab + l_bins.',
      ].join('\n'),
    )
    .argument('<input>', "CODES, int32 .npy (batch, n_ctx) of the prior's level (or an .npz with level_L); in the older form, the prior")
    .option('--prior <file>', 'the prior (.safetensors, or .pth.tar with --vqvae)')
    .option('--vqvae <file>', "the VQ-VAE: needed for a .pth.tar prior; for a converted prior, checked to be the one it was built for (levels, bins, hops)")
    .option('--labels <npy>', "the original's label rows y, (batch, 4 + max_bow_genre_size + n_tokens) or one row for all, lyric tokens after the head for lyric models (default: unknown artist/genre, offset 0, no lyrics)")
    .option('--upper <npy>', "upsamplers: the level above's codes, (batch, n_ctx / cond_downsample) (.npy, or .npz with level_{L+1}; default: CODES' .npz)")
    .option('--inputs <npz>', 'the older form: .npz with y (n, label_len incl. lyric tokens) and tokens (n, n_ctx) or combined (n, len); upper for upsamplers')
    .addOption(
      new Option('--mode <mode>', 'forward: one teacher-forced pass; cached: KV-cached decoding from position 0 (a combined lyric model prefills its lyrics); chunked: --prefix N prefilled in chunks of --chunk C, then decoding (sample, primed: the older names)')
        .choices(['forward', 'cached', 'chunked', 'sample', 'primed'])
        .default('forward'),
    )
    .option('--prefix <n>', 'chunked: codes prefilled before decoding (codes of CODES, a lyric model\'s lyric tokens always come first; older form: transformer positions, default 0)', intArg('--prefix'))
    .option('--chunk <n>', 'cached/chunked: prefill in chunks of n positions (default: one pass)', intArg('--chunk'))
    .option('--dump-logits <file>', "write every position's logits over the whole transformer sequence, float32 (batch, len, bins): .npy, or .npz (array logits)")
    .addOption(backendOption())
    .action(async (input: string, o: Omit<ScoreArgs, 'input'>) => {
      await scoreCommand({ input, ...o }, log);
    });

  program
    .command('info')
    .description('print what a checkpoint (.pth.tar or .safetensors) holds, without running it')
    .argument('<file>')
    .option('--keys', 'list every tensor')
    .option('--json', 'machine-readable output')
    .action((file: string, o: { keys?: boolean; json?: boolean }) => {
      const info = modelInfo(file);
      log(o.json ? JSON.stringify(info, null, 2) : formatInfo(info, o.keys));
    });

  program
    .command('doctor')
    .description('what this machine offers and what would run: Node, CPU and kernel ISA, the native addon loaded, the CUDA library, driver and devices, and why each backend would or would not be chosen')
    .option('--json', 'machine-readable output')
    .action((o: { json?: boolean }) => {
      const r = doctorReport();
      log(o.json ? JSON.stringify(r, null, 2) : formatDoctor(r));
      // Nothing can run without the addon: say so in the exit status too, for scripts.
      if (!r.addon.loaded) process.exitCode = 1;
    });

  program
    .command('explore')
    .description('browse, listen to and compare generated samples in a local web page (or write it as static files with --export)')
    .argument('[dirs...]', 'generate output folders, or folders holding them (default: the current folder)')
    .option('--port <n>', 'port (default: a free one)', intArg('--port'))
    .option('--host <addr>', 'address to listen on (default 127.0.0.1: this machine only)')
    .option('--no-open', 'do not open a browser')
    .option('--export <dir>', 'write the explorer as static files to this folder instead of serving it')
    .option('--model <dir>', 'model folder for continue/upsample jobs (default: the model each run recorded)')
    .option('--no-jobs', 'hide continue/upsample (listen only)')
    .option('--redis <url>', 'run continue/upsample jobs on this Redis job queue ("jukebox worker"s) and show its queued and running jobs')
    .option('--queue <name>', 'with --redis: the queue name (default "jukebox")')
    .action(async (dirs: string[], o: { port?: number; host?: string; open: boolean; export?: string; model?: string; jobs: boolean; redis?: string; queue?: string }) => {
      const ac = new AbortController();
      const stop = () => ac.abort();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      try {
        await exploreCommand({ dirs: dirs.length ? dirs : ['.'], ...o }, log, ac.signal);
      } finally {
        process.removeListener('SIGINT', stop);
        process.removeListener('SIGTERM', stop);
      }
    });

  return program;
}

/** Runs the CLI; returns the exit code. Errors print as one line on stderr. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  program.exitOverride();
  program.configureOutput({ writeErr: (s) => process.stderr.write(s) });
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (e) {
    const ce = e as { code?: string; exitCode?: number };
    if (typeof ce.code === 'string' && ce.code.startsWith('commander.')) {
      // help and version exit 0; usage errors were already printed by commander
      return ce.exitCode ?? 1;
    }
    const msg = e instanceof JukeboxError ? `${e.message} [${e.code}]` : e instanceof Error ? e.message : String(e);
    process.stderr.write(`jukebox: error: ${msg.replace(/\s*\n\s*/g, ' ')}\n`);
    if (process.env.JUKEBOX_DEBUG && e instanceof Error) process.stderr.write(`${e.stack}\n`);
    return 1;
  }
}
