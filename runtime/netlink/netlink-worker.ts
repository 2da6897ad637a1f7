// One netlink worker thread (workers.ts): a socket of its own, operations in,
// results or errors out.
import { parentPort, workerData } from 'node:worker_threads';
import { NetlinkError } from './backend.ts';
import { RtNetlink } from './rtnetlink.ts';

const nl = new RtNetlink(workerData);
const allowed = new Set([
  'createLink', 'getLink', 'listLinks', 'setLinkUp', 'setLinkMtu', 'setLinkMaster', 'setLinkMac', 'renameLink', 'moveLinkToNetns', 'deleteLink', 'setBridgePort',
  'addAddress', 'deleteAddress', 'listAddresses', 'addRoute', 'deleteRoute', 'listRoutes', 'addNeighbor', 'deleteNeighbor', 'listNeighbors',
  'addFdbEntry', 'deleteFdbEntry', 'listFdbEntries',
]);

parentPort!.on('message', ({ id, op, args }: { id: number; op: string; args: unknown[] }) => {
  try {
    if (!allowed.has(op)) throw new Error(`no netlink operation ${op}`);
    const result = (nl as unknown as Record<string, (...a: unknown[]) => unknown>)[op]!(...args);
    parentPort!.postMessage({ id, result });
  } catch (e) {
    const err = e as NetlinkError;
    parentPort!.postMessage({ id, error: { name: err?.name ?? 'Error', errno: err?.errno, code: err?.code, message: err?.message ?? String(e) } });
  }
});
