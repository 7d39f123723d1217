#!/usr/bin/env node
// The `jukebox` CLI. The TypeScript build (dist/) is made by `npm install` (prepare).
import { main } from '../dist/cli/main.js';

process.exitCode = await main(process.argv);
