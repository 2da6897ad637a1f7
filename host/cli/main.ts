// The wasmnet command line. Runtime-agnostic: host/node/main.ts and
// host/deno/main.ts call it with their own unix-socket listener.
import { Command, InvalidArgumentError } from 'commander';
import pino from 'pino';
import { bundledBridge, serve, type UnixListener } from '../core/serve.ts';
import { defaultCallTimeoutMs } from '../../runtime/driver-host.ts';

function positiveInt(max: number) {
  return (value: string) => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || n < 1 || n > max) throw new InvalidArgumentError(`expected a whole number from 1 to ${max}`);
    return n;
  };
}

function pluginName(value: string) {
  if (!/^[a-z0-9][a-z0-9._-]{0,62}$/.test(value)) throw new InvalidArgumentError('expected lowercase letters, digits, ".", "_" or "-" (up to 63)');
  return value;
}

export async function main(argv: string[], listen: UnixListener): Promise<void> {
  const program = new Command('wasmnet')
    .description('Docker network drivers as sandboxed WebAssembly components')
    .showHelpAfterError()
    .exitOverride((err) => process.exit(err.exitCode));

  program
    .command('serve')
    .description('serve a driver to dockerd on a plugin socket (the bundled bridge driver by default)')
    .option('--socket-dir <dir>', 'directory dockerd discovers plugin sockets in', '/run/docker/plugins')
    .option('--state-dir <dir>', 'where state (SQLite) and compiled drivers are kept', '/var/lib/wasmnet')
    .option('--name <name>', 'plugin name: the socket is <socket-dir>/<name>.sock and users pass it to `docker network create -d`', pluginName, 'wasmnet-bridge')
    .option('--driver <file>', 'driver component (.wasm) to serve', bundledBridge)
    .option('--call-timeout <ms>', 'deadline of one driver call, in milliseconds', positiveInt(3_600_000), defaultCallTimeoutMs)
    .option('--log-level <level>', 'debug, info, warn or error', 'info')
    .action(async (opts: { socketDir: string; stateDir: string; name: string; driver: string; callTimeout: number; logLevel: string }) => {
      if (!['debug', 'info', 'warn', 'error'].includes(opts.logLevel)) program.error(`--log-level: expected debug, info, warn or error`);
      const logger = pino({ level: opts.logLevel, base: { plugin: opts.name } });
      let running;
      try {
        running = await serve(
          { socketDir: opts.socketDir, stateDir: opts.stateDir, name: opts.name, component: opts.driver, callTimeoutMs: opts.callTimeout, logger },
          listen,
        );
      } catch (e) {
        console.error(`wasmnet: ${(e as Error).message}`);
        process.exit(1);
      }
      console.log(`wasmnet: serving ${opts.name} on ${running.socketPath}`);
      const stop = async (signal: string) => {
        logger.info({ signal }, 'stopping');
        await running.close();
        process.exit(0);
      };
      process.once('SIGTERM', () => void stop('SIGTERM'));
      process.once('SIGINT', () => void stop('SIGINT'));
    });

  await program.parseAsync(argv, { from: 'user' });
}
