// `wasmnet` on Deno: `deno run --allow-... host/deno/main.ts serve ...` (or `deno task start`).
import process from 'node:process';
import { main } from '../cli/main.ts';
import { listenUnix } from './listen.ts';

await main(process.argv.slice(2), listenUnix);
