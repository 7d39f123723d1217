/**
 * The option parsers and option groups that several CLI commands share (main.ts and
 * queue-commands.ts), so that `generate` and `submit` take their sampling settings under
 * the same names with the same parsing, and a change to one cannot miss the other.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { BACKENDS } from '../backend.js';

/** A parser for a non-negative integer option ("--x must be a non-negative integer"). */
export function intArg(name: string): (v: string) => number {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`${name} must be a non-negative integer`);
    return n;
  };
}

/** A parser for an integer option >= min ("--x must be an integer >= min"). */
export function intAtLeast(name: string, min = 0): (v: string) => number {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be an integer >= ${min}`);
    return n;
  };
}

/** The integer parsers a command's sampling options use (their messages differ by command). */
export type IntParser = (name: string, min?: number) => (v: string) => number;

/** A parser for a comma-separated list of level numbers. */
export function levelsArg(v: string): number[] {
  const out = v.split(',').map((s) => Number(s.trim()));
  if (out.some((n) => !Number.isInteger(n) || n < 0)) throw new InvalidArgumentError('levels must be a comma-separated list of level numbers, e.g. 0,1,2');
  return out;
}

/** --backend, the same on every command that runs a model. */
export function backendOption(): Option {
  return new Option('--backend <backend>', 'auto: CUDA when available, else the CPU (says which and why)').choices([...BACKENDS]).default('auto');
}

/** What differs between the commands that take the sampling options: the help texts and the integer parser. */
export interface SamplingOptionTexts {
  /** intArg (generate) or intAtLeast (submit), as each command parsed its options before they were shared */
  int: IntParser;
  samples: string;
  /** the least --samples takes */
  minSamples: number;
  seed: string;
  levels: string;
  prompt: string;
  codes: string;
}

/**
 * The sampling options of `generate` and `submit`, --seconds to --codes in help order
 * (read back by commands.ts's samplingArgs, with --allow-unknown and --format, which each
 * command adds where its help lists them).
 */
export function addSamplingOptions(cmd: Command, t: SamplingOptionTexts): Command {
  return cmd
    .option('--seconds <s>', 'seconds to generate', Number, 10)
    .option('--total-seconds <s>', "length of the whole song the timing labels describe (default: --seconds, at least the top prior's shortest song)", Number)
    .option('--samples <n>', t.samples, t.int('--samples', t.minSamples), 1)
    .option('--artist <name>', 'artist name or numeric id')
    .option('--genre <name>', 'genre name or numeric id')
    .option('--lyrics <text>', 'lyrics (lyric models)')
    .option('--lyrics-file <file>', 'read the lyrics from a text file')
    .option('--temperature <t>', "sampling temperature (default: the model folder's, else 0.99)", Number)
    .option('--top-k <k>', 'keep the k most likely tokens (0: off)', t.int('--top-k'))
    .option('--top-p <p>', 'nucleus sampling threshold (0: off)', Number)
    .option('--seed <n>', t.seed, t.int('--seed'))
    .option('--levels <list>', t.levels, levelsArg)
    .option('--prompt <audio>', t.prompt)
    .option('--prompt-seconds <s>', 'use only the first seconds of the prompt', Number)
    .option('--codes <npz>', t.codes);
}

/** --allow-unknown and --format, which follow the sampling options on both commands. */
export function addOutputOptions(cmd: Command): Command {
  return cmd
    .option('--allow-unknown', 'map unknown artists/genres to id 0 (as the original) instead of failing')
    .addOption(new Option('--format <fmt>', 'WAV sample format').choices(['s16', 'f32']).default('s16'));
}
