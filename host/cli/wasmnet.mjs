#!/usr/bin/env node
// The `wasmnet` command (npm's bin): runs the Node entry point.
import '../node/main.ts';
