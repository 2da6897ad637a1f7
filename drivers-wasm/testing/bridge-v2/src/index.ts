// wasmnet-bridge 0.2.0: a good later version, with a migration.
import { variant } from './variant.ts';

const v = variant('good', '0.2.0');
export const driver = v.driver;
export const registration = v.registration;
export const extConner = v.extConner;
export const lifecycle = v.lifecycle;
