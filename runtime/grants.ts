// Driver packages and grants. A package is a component plus its manifest
// (`<name>.manifest.json` beside `<name>.wasm`). Installing shows what the
// manifest asks for, in the manner of `docker plugin install`, and records
// the operator's grant for that exact component digest: a changed component,
// or a wider manifest, needs a new grant.
import { readFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { readComponent } from './component.ts';
import { checkImports, describePrivileges, type Manifest, ManifestError, parseManifest } from './manifest.ts';
import type { Grant, GrantStore } from './store/store.ts';

export interface DriverPackage {
  component: string;
  bytes: Uint8Array;
  digest: string;
  manifest: Manifest;
  imports: string[];
  exports: string[];
}

/** The manifest that goes with a component file by default. */
export function manifestPathFor(component: string): string {
  return join(dirname(component), basename(component).replace(/\.wasm$/, '') + '.manifest.json');
}

export async function readPackage(component: string, manifestPath = manifestPathFor(component)): Promise<DriverPackage> {
  const file = await readFile(component).catch((e: NodeJS.ErrnoException) => {
    throw new Error(`cannot read driver component ${component}: ${e.code === 'ENOENT' ? 'no such file (build the bundled drivers with `npm run build`)' : e.message}`);
  });
  const text = await readFile(manifestPath, 'utf8').catch((e: NodeJS.ErrnoException) => {
    throw new ManifestError(`cannot read the manifest ${manifestPath}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`);
  });
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new ManifestError(`${manifestPath}: not JSON`);
  }
  const manifest = parseManifest(json, manifestPath);
  const { bytes, digest, imports, exports } = await readComponent(file);
  checkImports(imports, manifest);
  return { component, bytes, digest, manifest, imports, exports };
}

/** The text shown before granting. */
export function privilegePrompt(pkg: DriverPackage): string {
  const m = pkg.manifest;
  const lines = describePrivileges(m).map((l) => ` - ${l}`);
  return [`Driver "${m.name}" ${m.version}${m.publisher ? ` from ${m.publisher}` : ''} (${pkg.digest}) is requesting the following privileges:`, ...lines].join('\n');
}

export function grantPackage(grants: GrantStore, pkg: DriverPackage): Grant {
  // Two drivers whose prefixes overlap could name each other's links.
  const mine = pkg.manifest.capabilities.netlink?.linkPrefix;
  if (mine !== undefined) {
    for (const g of grants.list()) {
      if (g.driver === pkg.manifest.name) continue;
      const theirs = (JSON.parse(g.manifest) as Manifest).capabilities.netlink?.linkPrefix;
      if (theirs !== undefined && (theirs.startsWith(mine) || mine.startsWith(theirs))) {
        throw new ManifestError(`link prefix "${mine}" overlaps the prefix "${theirs}" of driver ${g.driver}, which is granted already`);
      }
    }
  }
  const grant: Grant = {
    digest: pkg.digest,
    driver: pkg.manifest.name,
    version: pkg.manifest.version,
    manifest: JSON.stringify(pkg.manifest),
    grantedAt: new Date().toISOString(),
  };
  grants.put(grant);
  return grant;
}

/** The grant of a package, refusing when there is none or it grants less than the manifest asks. */
export function requireGrant(grants: GrantStore, pkg: DriverPackage): Manifest {
  const grant = grants.get(pkg.digest);
  if (!grant) {
    throw new ManifestError(`driver "${pkg.manifest.name}" (${pkg.digest}) has no grant: install it with \`wasmnet install ${pkg.component}\` (or serve with --grant-all)`);
  }
  const granted = parseManifest(JSON.parse(grant.manifest), `grant of ${pkg.digest}`);
  if (JSON.stringify(granted) !== JSON.stringify(pkg.manifest)) {
    throw new ManifestError(`the manifest of driver "${pkg.manifest.name}" (${pkg.digest}) differs from what was granted: install it again to review the change`);
  }
  return granted;
}
