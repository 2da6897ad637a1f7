// Reading a component file: its digest and its world (what it imports and
// exports), independent of the engine that will run it.
/**
 * The component's world: the interfaces it imports and exports, with their
 * versions (jco's own lists drop them). A world that imports or exports
 * anything but whole named interfaces (a bare function, an inline interface)
 * is refused: the host offers nothing of the kind.
 */
/** Worlds already read, by digest: reading one means parsing the whole component. */
const worlds = new Map<string, { imports: string[]; exports: string[] }>();

/** componentWorld, remembered by digest (switching back to a version costs nothing). */
export async function componentWorldOf(bytes: Uint8Array, digest: string): Promise<{ imports: string[]; exports: string[] }> {
  let w = worlds.get(digest);
  if (!w) {
    w = await componentWorld(bytes);
    worlds.set(digest, w);
  }
  return { imports: [...w.imports], exports: [...w.exports] };
}

export async function componentWorld(bytes: Uint8Array): Promise<{ imports: string[]; exports: string[] }> {
  const { componentWit } = await import('@bytecodealliance/jco-transpile/wasm-tools');
  let wit: string;
  try {
    wit = await componentWit(bytes);
  } catch (e) {
    throw new Error(`not a WebAssembly component: ${(e as Error).message}`);
  }
  const body = /^world root \{\n([\s\S]*?)^\}/m.exec(wit)?.[1];
  if (body === undefined) throw new Error('component has no world');
  const imports: string[] = [];
  const exports: string[] = [];
  for (const line of body.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('//'))) {
    const m = /^(import|export) ([a-z0-9-]+:[a-z0-9-]+\/[a-z0-9-]+(?:@[0-9A-Za-z.+-]+)?);$/.exec(line);
    if (!m) throw new Error(`component world has an item the host does not support: ${line.slice(0, 200)}`);
    (m[1] === 'import' ? imports : exports).push(m[2]!);
  }
  return { imports, exports };
}

export { digestOf } from './engine/engine.ts';
