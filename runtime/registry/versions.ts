// Driver versions side by side in the state directory, content-addressed:
// `<state-dir>/drivers/<digest>/{component.wasm,manifest.json}`. A version is
// installed once (its grant is separate, runtime/grants.ts), and any installed
// version can become the active one.
import { copyFile, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { DriverPackage } from '../grants.ts';
import type { InstalledVersion, VersionStore } from '../store/store.ts';

export async function installVersion(stateDir: string, versions: VersionStore, pkg: DriverPackage): Promise<InstalledVersion> {
  const dir = join(stateDir, 'drivers', pkg.digest.replace(':', '-'));
  const component = join(dir, 'component.wasm');
  const manifest = join(dir, 'manifest.json');
  const existing = versions.list(pkg.manifest.name).find((v) => v.digest === pkg.digest);
  if (!existing) {
    const tmp = `${dir}.tmp-${process.pid}`;
    await rm(tmp, { recursive: true, force: true });
    await mkdir(tmp, { recursive: true, mode: 0o700 });
    await copyFile(pkg.component, join(tmp, 'component.wasm'));
    await writeFile(join(tmp, 'manifest.json'), JSON.stringify(pkg.manifest, null, 2) + '\n');
    await rm(dir, { recursive: true, force: true });
    await rename(tmp, dir);
    versions.add({ driver: pkg.manifest.name, digest: pkg.digest, version: pkg.manifest.version, component, manifest, installedAt: new Date().toISOString() });
  }
  return versions.list(pkg.manifest.name).find((v) => v.digest === pkg.digest)!;
}
