// The Node listener: Hono's Node adapter on a unix socket.
import { createAdaptorServer } from '@hono/node-server';
import type { UnixListener } from '../core/serve.ts';

export const listenUnix: UnixListener = (app, socketPath) =>
  new Promise((resolvePromise, reject) => {
    const server = createAdaptorServer({ fetch: app.fetch });
    server.once('error', reject);
    server.listen(socketPath, () => {
      server.off('error', reject);
      resolvePromise(
        () =>
          new Promise<void>((done) => {
            server.close(() => done());
            (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
          }),
      );
    });
  });
