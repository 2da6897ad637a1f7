// The Deno listener: Deno.serve on a unix socket.
import type { UnixListener } from '../core/serve.ts';

declare const Deno: {
  serve(options: { path: string; transport: 'unix'; onListen?: () => void }, handler: (req: Request) => Response | Promise<Response>): { shutdown(): Promise<void>; finished: Promise<void> };
};

export const listenUnix: UnixListener = (app, socketPath) =>
  new Promise((resolvePromise) => {
    const server = Deno.serve({ path: socketPath, transport: 'unix', onListen: () => resolvePromise(() => server.shutdown()) }, app.fetch);
  });
