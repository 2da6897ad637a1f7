// How the host calls into a driver, wherever it runs. A call is plain data (the
// export, its arguments, and which callback object to hand the driver); the
// outcome is plain data too (the value or the driver's error, and what the
// driver set on the callback object). The in-process invoker here runs the
// call on an instance in this thread; the sandbox (runtime/sandbox) runs the
// same invoker in a child process and carries calls and outcomes over a pipe.
import type { DriverExports, DriverError } from './contract.ts';
import { errorKinds } from './contract.ts';
import { type EndpointInterface, InterfaceInfo, JoinInfo, NetworkInfo, retire, type InterfaceNames, type StaticRoute } from './callbacks.ts';
import type { IpamData } from './contract.ts';
import type { DriverInstance } from './engine/engine.ts';

export type ExportedInterface = 'driver' | 'registration' | 'extConner' | 'gwAllocChecker' | 'tableWatcher' | 'lifecycle';

/** The callback object a call hands the driver, and what it starts from. */
export type CallbackSpec = { kind: 'network-info' } | { kind: 'interface-info'; given: EndpointInterface } | { kind: 'join-info' };

export interface DriverCall {
  iface: ExportedInterface;
  fn: string;
  /** Arguments; the one at `callback.at` is replaced by the callback object. */
  args: unknown[];
  callback?: { at: number; spec: CallbackSpec };
}

/** What the driver set on the callback object during the call. */
export type CallbackState =
  | { kind: 'network-info'; ipamUpdates: IpamData[][] }
  | { kind: 'interface-info'; set: Partial<EndpointInterface>; createdInContainer: boolean }
  | {
      kind: 'join-info';
      names?: InterfaceNames;
      gateway?: string;
      gatewayIpv6?: string;
      staticRoutes: StaticRoute[];
      disableGatewayService: boolean;
    };

export type CallOutcome =
  | { ok: true; value: unknown; callback?: CallbackState }
  /** The driver returned err(driver-error). */
  | { ok: false; error: DriverError; callback?: CallbackState }
  /** The driver trapped, timed out, or its sandbox died: the instance is gone. */
  | { ok: false; trap: string; timedOut?: boolean };

export interface Invoker {
  invoke(call: DriverCall, timeoutMs: number): Promise<CallOutcome>;
  close(): Promise<void>;
}

function makeCallback(spec: CallbackSpec): NetworkInfo | InterfaceInfo | JoinInfo {
  switch (spec.kind) {
    case 'network-info':
      return new NetworkInfo();
    case 'interface-info':
      return new InterfaceInfo(spec.given);
    case 'join-info':
      return new JoinInfo();
  }
}

function stateOf(cb: NetworkInfo | InterfaceInfo | JoinInfo): CallbackState {
  if (cb instanceof NetworkInfo) return { kind: 'network-info', ipamUpdates: cb.ipamUpdates };
  if (cb instanceof InterfaceInfo) return { kind: 'interface-info', set: { ...cb.set }, createdInContainer: cb.createdInContainer };
  return {
    kind: 'join-info',
    names: cb.names,
    gateway: cb.gateway,
    gatewayIpv6: cb.gatewayIpv6,
    staticRoutes: [...cb.staticRoutes],
    disableGatewayService: cb.gatewayServiceDisabled,
  };
}

/** The driver-error inside whatever a component threw, if it is one. */
export function driverErrorOf(e: unknown): DriverError | undefined {
  const payload = (e as { payload?: unknown })?.payload ?? e;
  const p = payload as { kind?: unknown; message?: unknown };
  if (p && typeof p === 'object' && typeof p.kind === 'string' && (errorKinds as string[]).includes(p.kind) && typeof p.message === 'string') {
    return { kind: p.kind as DriverError['kind'], message: p.message.slice(0, 4096) };
  }
  return undefined;
}

/** Runs calls on an instance in this thread. A trap poisons the instance: later calls fail at once. */
export class InProcessInvoker implements Invoker {
  private readonly exports: DriverExports;
  private trapped: string | undefined;

  constructor(instance: DriverInstance) {
    this.exports = instance.exports;
  }

  /** Which optional interfaces the instance really has. */
  has(iface: ExportedInterface): boolean {
    return (this.exports as Record<string, unknown>)[iface] !== undefined;
  }

  invokeSync(call: DriverCall): CallOutcome {
    if (this.trapped !== undefined) return { ok: false, trap: `the instance trapped earlier (${this.trapped})` };
    const target = (this.exports as unknown as Record<string, Record<string, (...a: unknown[]) => unknown> | undefined>)[call.iface];
    const fn = target?.[call.fn];
    if (typeof fn !== 'function') return { ok: false, error: { kind: 'not-implemented', message: `the driver does not export ${call.iface}.${call.fn}` } };
    const args = [...call.args];
    const cb = call.callback ? makeCallback(call.callback.spec) : undefined;
    if (call.callback && cb) args[call.callback.at] = cb;
    try {
      const value = fn.apply(target, args);
      return { ok: true, value, callback: cb && stateOf(cb) };
    } catch (e) {
      const error = driverErrorOf(e);
      if (error) return { ok: false, error, callback: cb && stateOf(cb) };
      this.trapped = e instanceof Error ? e.message : String(e);
      return { ok: false, trap: this.trapped.slice(0, 4096) };
    } finally {
      // The callback is valid for this call only: a handle kept for later traps the driver.
      if (cb) retire(cb);
    }
  }

  invoke(call: DriverCall, _timeoutMs: number): Promise<CallOutcome> {
    return Promise.resolve().then(() => this.invokeSync(call));
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
