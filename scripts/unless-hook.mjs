// npm runs a script named "pre<name>" before every `npm run <name>`, so `prebuild` would run
// before each `npm run build` and `prebuild:cuda` before each `npm run build:cuda`. This
// wrapper runs its command only when the user asked for this script itself:
//   node scripts/unless-hook.mjs <the script it would be a hook of> -- <command...>
// It looks up the npm process that started it (Linux /proc, where the prebuilds are made)
// and skips the command when that npm was asked to run <hook-of>.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

const [hookOf, sep, ...command] = process.argv.slice(2);
if (!hookOf || sep !== '--' || command.length === 0) {
  console.error('usage: node scripts/unless-hook.mjs <script> -- <command...>');
  process.exit(2);
}

function npmTarget() {
  let pid = process.ppid;
  for (let i = 0; i < 8 && pid > 1; i++) {
    let args;
    try {
      // npm sets its process title to "npm run <script>", so split on spaces too
      args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split(/[\0\s]+/).filter(Boolean);
    } catch {
      return undefined;
    }
    const run = args.findIndex((a) => a === 'run' || a === 'run-script');
    if (run >= 0 && args[run + 1] && args.some((a) => /npm/.test(a))) return args[run + 1];
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    pid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  }
  return undefined;
}

if (process.platform === 'linux' && npmTarget() === hookOf) process.exit(0);
const r = spawnSync(command[0], command.slice(1), { stdio: 'inherit', shell: false });
process.exit(r.status ?? 1);
