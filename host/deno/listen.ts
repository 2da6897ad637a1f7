// The Deno listener. Deno.serve would be the native choice, but it builds the
// request URL from the Host header, and dockerd before v25 sends the socket
// path there (`/run/docker/plugins/x.sock`), which turns `/Plugin.Activate`
// into another path. Deno's node:http server hands over the raw request
// target, so Deno serves through the same listener as Node.
export { listenUnix } from '../node/listen.ts';
