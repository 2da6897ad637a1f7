// The WASI interfaces a driver component may import, implemented deny-by-default.
// Placeholder: filled in once the toolchain's import list is known.
export const wasiImports: Record<string, unknown> = {};
