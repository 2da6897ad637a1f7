// wasmnet-bridge 0.6.0: fails its self-check.
import { variant } from '../../bridge-v2/src/variant.ts';

const v = variant('bad-self-check', '0.6.0');
export const driver = v.driver;
export const registration = v.registration;
export const extConner = v.extConner;
export const lifecycle = v.lifecycle;
