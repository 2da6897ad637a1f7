// `wasmnet:host/log`: a driver's log lines go to the host's logger, tagged
// with the driver and capped in size.
import type { Logger } from 'pino';

type Level = 'debug' | 'info' | 'warn' | 'error';
const maxMessage = 4096;

export function logImport(logger: Logger) {
  return {
    log(level: Level, message: string): void {
      const text = String(message).slice(0, maxMessage);
      const fn = ({ debug: logger.debug, info: logger.info, warn: logger.warn, error: logger.error } as const)[level] ?? logger.info;
      fn.call(logger, { from: 'driver' }, text);
    },
  };
}
