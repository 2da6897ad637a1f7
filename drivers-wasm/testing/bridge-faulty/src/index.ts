// wasmnet-bridge 0.3.0: traps in every driver call (passes its self-check).
import { variant } from '../../bridge-v2/src/variant.ts';

const v = variant('faulty', '0.3.0');
export const driver = v.driver;
export const registration = v.registration;
export const extConner = v.extConner;
export const lifecycle = v.lifecycle;
