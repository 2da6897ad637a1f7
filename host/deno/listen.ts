// The Deno listener: Deno.serve on a unix socket.
import type { UnixListener } from '../core/serve.ts';

declare const Deno: {
  serve(options: { path: string; transport: 'unix'; onListen?: () => void }, handler: (req: Request) => Response | Promise<Response>): { shutdown(): Promise<void>; finished: Promise<void> };
};

/** How long a shutdown waits for in-flight calls before it lets go of idle keep-alive connections. */
const shutdownGraceMs = 2000;

export const listenUnix: UnixListener = (app, socketPath) =>
  new Promise((resolvePromise) => {
    const server = Deno.serve({ path: socketPath, transport: 'unix', onListen: () => resolvePromise(close) }, app.fetch);
    function close(): Promise<void> {
      return Promise.race([server.shutdown(), new Promise<void>((r) => setTimeout(r, shutdownGraceMs))]);
    }
  });
