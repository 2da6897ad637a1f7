// The Node listener: Hono's Node adapter on a unix socket.
import { createServer } from 'node:http';
import { getRequestListener } from '@hono/node-server';
import type { UnixListener } from '../core/serve.ts';

/**
 * The Host header means nothing on a unix socket, and dockerd before v25 sent
 * the socket path there, which is no valid URL authority. Every request is
 * therefore given one fixed host (the one dockerd v25+ sends).
 */
const pluginHost = 'plugin.moby.localhost';

export const listenUnix: UnixListener = (app, socketPath) =>
  new Promise((resolvePromise, reject) => {
    const handle = getRequestListener(app.fetch);
    const server = createServer((req, res) => {
      req.headers.host = pluginHost;
      return handle(req, res);
    });
    // dockerd keeps idle connections for 30 s (IdleConnTimeout) and does not
    // retry a POST whose connection the server closed under it, so the host
    // keeps idle connections longer than that: the client always closes first.
    server.keepAliveTimeout = 65_000;
    server.headersTimeout = 66_000;
    server.once('error', reject);
    server.listen(socketPath, () => {
      server.off('error', reject);
      resolvePromise(
        () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      );
    });
  });
