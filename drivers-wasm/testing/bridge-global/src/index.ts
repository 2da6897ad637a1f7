// wasmnet-bridge 0.4.0: registers another scope than dockerd was told.
import { variant } from '../../bridge-v2/src/variant.ts';

const v = variant('global', '0.4.0');
export const driver = v.driver;
export const registration = v.registration;
export const extConner = v.extConner;
export const lifecycle = v.lifecycle;
