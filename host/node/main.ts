// `wasmnet` on Node: `node host/node/main.ts serve ...` (or `npx wasmnet`).
import { main } from '../cli/main.ts';
import { listenUnix } from './listen.ts';

await main(process.argv.slice(2), listenUnix);
