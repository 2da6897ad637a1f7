// wasmnet-bridge 0.5.0: writes to the store, then fails its migration.
import { variant } from '../../bridge-v2/src/variant.ts';

const v = variant('bad-migration', '0.5.0');
export const driver = v.driver;
export const registration = v.registration;
export const extConner = v.extConner;
export const lifecycle = v.lifecycle;
