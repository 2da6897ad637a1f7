// `wasmnet:host/store`: the driver's own key space in the host's state store.
import type { KeyValueStore } from '../store/store.ts';
import { StoreLimitError } from '../store/store.ts';
import { witError } from '../contract.ts';

function storeError(e: unknown): never {
  if (e instanceof StoreLimitError) throw witError({ tag: 'invalid', val: e.message });
  throw witError({ tag: 'unavailable', val: e instanceof Error ? e.message : String(e) });
}

export function storeImport(kv: KeyValueStore) {
  return {
    get(key: string): string | undefined {
      return kv.get(key);
    },
    set(key: string, value: string): void {
      try {
        kv.set(key, value);
      } catch (e) {
        storeError(e);
      }
    },
    delete(key: string): boolean {
      try {
        return kv.delete(key);
      } catch (e) {
        return storeError(e);
      }
    },
    /** Over its byte budget the answer is refused; the contract has no error for it, so the driver traps. */
    entries(prefix: string): [string, string][] {
      return kv.entries(prefix);
    },
  };
}
