// wasmnet's wasmtime engine as a Node-API addon (loaded by Node and by Deno).
//
// NativeEngine     one wasmtime Engine (epoch interruption on; a background
//                  thread advances the epoch every `epochTickMs`).
// NativeComponent  a compiled component, linked once (Linker::instantiate_pre)
//                  against host functions that call JavaScript: every function
//                  of every interface the component imports, whatever they
//                  are, and every resource of them as a host resource type.
// NativeInstance   one instance in its own Store (with a memory cap), whose
//                  exports are called synchronously from JavaScript.
//
// Host imports run on the JavaScript thread that called the export (the addon
// is only entered from JavaScript), so they can call the JavaScript
// implementations directly; the napi_env of the current call is kept in the
// store's data for them.
//
// A call's outcome is returned to JavaScript as [status, value] and the
// TypeScript side (index.ts) shapes the errors:
//   0 returned value; 1 err(payload) of the function's result;
//   2 engine failure { code, message } (trap, deadline, memory, poisoned);
//   3 a JavaScript exception thrown by a host import, rethrown as it is;
//   4 an argument that does not fit the function's parameter types.
mod convert;
mod js;

use js::{Fail, Raw};
use napi::bindgen_prelude::*;
use napi_derive::napi;
use std::cell::RefCell;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use wasmtime::component::{types, Component, Func, Instance, InstancePre, Linker, ResourceType, Type, Val};
use wasmtime::{AsContextMut, Config, Engine, ResourceLimiter, Store, StoreContextMut, StoreLimits, StoreLimitsBuilder, Trap};

/// The wasmtime crate's version (pinned exactly in Cargo.toml); part of the cache key.
pub const WASMTIME_VERSION: &str = "48.0.8";

// ---------------------------------------------------------------------------
// Store data

#[derive(Clone, Copy)]
pub struct Entry {
    pub res: u32,
    pub obj: js::Ref,
}

pub struct ClassRef {
    pub class: js::Ref,
    /// PascalCase name, for messages.
    pub name: String,
}

/// Per imported freestanding function: the interface object and the function.
struct FuncRefs {
    this: js::Ref,
    func: js::Ref,
}

/// The memory cap: wasmtime's store limits (each memory at most `limit`
/// bytes, growth past it a trap) plus a cap on all the instance's memories
/// together, as the jco engine counts; notes whether it refused a growth.
pub struct Limiter {
    inner: StoreLimits,
    limit: usize,
    total: usize,
    hit: Option<usize>,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        let r = self.inner.memory_growing(current, desired, maximum);
        let total = self.total - current.min(self.total) + desired;
        match r {
            Ok(true) if total > self.limit => {
                self.hit = Some(total);
                wasmtime::bail!("forcing trap when growing memory: all memories together would take {total} bytes, over the cap of {} bytes", self.limit)
            }
            Ok(true) => {
                self.total = total;
                Ok(true)
            }
            other => {
                self.hit = Some(desired);
                other
            }
        }
    }
    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.inner.memory_grow_failed(error)
    }
    fn table_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        self.inner.table_growing(current, desired, maximum)
    }
    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.inner.table_grow_failed(error)
    }
    fn instances(&self) -> usize {
        self.inner.instances()
    }
    fn tables(&self) -> usize {
        self.inner.tables()
    }
    fn memories(&self) -> usize {
        self.inner.memories()
    }
}

pub struct Data {
    env: js::Env,
    limiter: Limiter,
    funcs: Vec<Option<FuncRefs>>,
    /// The JavaScript class of each host resource type (index = host_dynamic payload).
    pub classes: Vec<ClassRef>,
    /// Resource handles the guest holds: rep → the JavaScript object.
    pub table: HashMap<u32, Entry>,
    next_rep: u32,
    /// Host objects lent to the guest for the current export call.
    pub borrows: Vec<(u32, wasmtime::component::ResourceAny)>,
    /// An exception a host import threw, to rethrow to the caller of the export.
    pending: Option<js::Ref>,
}

impl Data {
    pub fn enter(&mut self, obj: js::Ref, res: u32) -> u32 {
        loop {
            self.next_rep = self.next_rep.wrapping_add(1).max(1);
            if !self.table.contains_key(&self.next_rep) {
                break;
            }
        }
        self.table.insert(self.next_rep, Entry { res, obj });
        self.next_rep
    }

}

/// Ends the loans of host objects made for one export call.
fn release_borrows(store: &mut StoreContextMut<'_, Data>) {
    for (rep, res) in std::mem::take(&mut store.data_mut().borrows) {
        // Fails only when the guest still holds the loan, after a trap.
        let _ = res.resource_drop(&mut *store);
        let data = store.data_mut();
        if let Some(e) = data.table.remove(&rep) {
            unsafe { js::unreference(data.env, e.obj) };
        }
    }
}

impl Drop for Data {
    fn drop(&mut self) {
        let env = self.env;
        unsafe {
            for f in self.funcs.drain(..).flatten() {
                js::unreference(env, f.this);
                js::unreference(env, f.func);
            }
            for c in self.classes.drain(..) {
                js::unreference(env, c.class);
            }
            for (_, e) in self.table.drain() {
                js::unreference(env, e.obj);
            }
            if let Some(p) = self.pending.take() {
                js::unreference(env, p);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Linking

#[derive(Clone, Debug)]
enum SlotKind {
    Func { js_name: String },
    Method { res: u32, js_name: String },
    Static { res: u32, js_name: String },
    Constructor { res: u32 },
}

#[derive(Clone, Debug)]
struct Slot {
    iface: String,
    name: String,
    kind: SlotKind,
}

struct ResourceSlot {
    iface: String,
    name: String,
}

struct Linked {
    pre: InstancePre<Data>,
    slots: Vec<Slot>,
    resources: Vec<ResourceSlot>,
    imports: Vec<String>,
    exports: Vec<String>,
    /// (interface, function) of every exported function.
    export_funcs: Vec<(String, String)>,
}

fn link(engine: &Engine, component: &Component) -> wasmtime::Result<Linked> {
    let ty = component.component_type();
    let mut linker: Linker<Data> = Linker::new(engine);
    let mut slots = Vec::new();
    let mut resources: Vec<ResourceSlot> = Vec::new();
    let mut seen: Vec<(ResourceType, u32)> = Vec::new();
    let mut imports = Vec::new();
    for (iname, item) in ty.imports(engine) {
        let types::ComponentItem::ComponentInstance(inst) = item.ty else {
            wasmtime::bail!("component world has an item the host does not support: import {iname} is not an interface");
        };
        imports.push(iname.to_string());
        let mut li = linker.instance(iname)?;
        let items: Vec<(String, types::ComponentItem)> = inst.exports(engine).map(|(n, e)| (n.to_string(), e.ty)).collect();
        // Resources first, so that methods can name them.
        let mut local: HashMap<String, u32> = HashMap::new();
        for (name, it) in &items {
            if let types::ComponentItem::Resource(rt) = it {
                let idx = match seen.iter().find(|(t, _)| t == rt) {
                    Some((_, i)) => *i,
                    None => {
                        let i = resources.len() as u32;
                        resources.push(ResourceSlot { iface: iname.to_string(), name: name.clone() });
                        seen.push((*rt, i));
                        i
                    }
                };
                local.insert(name.clone(), idx);
                li.resource(name, ResourceType::host_dynamic(idx), |mut store: StoreContextMut<'_, Data>, rep| {
                    let data = store.data_mut();
                    if let Some(e) = data.table.remove(&rep) {
                        unsafe { js::unreference(data.env, e.obj) };
                    }
                    Ok(())
                })?;
            }
        }
        for (name, it) in &items {
            match it {
                types::ComponentItem::ComponentFunc(_) => {
                    let res_of = |r: &str| -> wasmtime::Result<u32> {
                        local.get(r).copied().ok_or_else(|| wasmtime::format_err!("{iname}: function {name} names an unknown resource {r}"))
                    };
                    let kind = if let Some(rest) = name.strip_prefix("[method]") {
                        let (r, m) = rest.split_once('.').ok_or_else(|| wasmtime::format_err!("bad method name {name}"))?;
                        SlotKind::Method { res: res_of(r)?, js_name: js::camel(m) }
                    } else if let Some(rest) = name.strip_prefix("[static]") {
                        let (r, m) = rest.split_once('.').ok_or_else(|| wasmtime::format_err!("bad static function name {name}"))?;
                        SlotKind::Static { res: res_of(r)?, js_name: js::camel(m) }
                    } else if let Some(r) = name.strip_prefix("[constructor]") {
                        SlotKind::Constructor { res: res_of(r)? }
                    } else if name.starts_with('[') {
                        wasmtime::bail!("{iname}: function {name} is not supported by this engine");
                    } else {
                        SlotKind::Func { js_name: js::camel(name) }
                    };
                    let index = slots.len();
                    let slot = Slot { iface: iname.to_string(), name: name.clone(), kind };
                    slots.push(slot.clone());
                    li.func_new(name, move |store, fty, params, results| host_call(store, index, &slot, fty, params, results))?;
                }
                types::ComponentItem::Resource(_) | types::ComponentItem::Type(_) => {}
                _ => wasmtime::bail!("{iname}: item {name} is not supported by this engine (only functions, resources and types)"),
            }
        }
    }
    let mut exports = Vec::new();
    let mut export_funcs = Vec::new();
    for (ename, item) in ty.exports(engine) {
        let types::ComponentItem::ComponentInstance(inst) = item.ty else {
            wasmtime::bail!("component world has an item the host does not support: export {ename} is not an interface");
        };
        exports.push(ename.to_string());
        for (fname, it) in inst.exports(engine) {
            if let types::ComponentItem::ComponentFunc(_) = it.ty {
                export_funcs.push((ename.to_string(), fname.to_string()));
            }
        }
    }
    let pre = linker.instantiate_pre(component)?;
    Ok(Linked { pre, slots, resources, imports, exports, export_funcs })
}

/// A host import called by the guest: converts the arguments, calls the
/// JavaScript implementation, converts its answer. A JavaScript exception
/// becomes err(payload) when the function returns a result and the exception
/// carries a payload; otherwise it traps the guest and is kept to be rethrown.
fn host_call(
    mut store: StoreContextMut<'_, Data>,
    index: usize,
    slot: &Slot,
    fty: types::ComponentFunc,
    params: &[Val],
    results: &mut [Val],
) -> wasmtime::Result<()> {
    let env = store.data().env;
    unsafe {
        let _scope = js::Scope::open(env);
        let param_types: Vec<Type> = fty.params().map(|(_, t)| t).collect();
        let result_type: Option<Type> = fty.results().next();
        let trap = |store: &mut StoreContextMut<'_, Data>, f: Fail, doing: &str| -> wasmtime::Error {
            let what = format!("{}#{}", slot.iface, slot.name);
            match f {
                Fail::Msg(m) => wasmtime::format_err!("host import {what}: {doing}: {m}"),
                Fail::Thrown(exc) => {
                    if let Ok(r) = js::reference(env, exc) {
                        let data = store.data_mut();
                        if let Some(old) = data.pending.replace(r) {
                            js::unreference(env, old);
                        }
                    }
                    wasmtime::format_err!("host import {what} threw an exception")
                }
            }
        };
        let mut args = Vec::with_capacity(params.len());
        for (p, t) in params.iter().zip(param_types.iter()) {
            match convert::to_js(env, &mut store, p.clone(), t) {
                Ok(v) => args.push(v),
                Err(f) => return Err(trap(&mut store, f, "converting its arguments")),
            }
        }
        let outcome = match &slot.kind {
            SlotKind::Func { .. } => {
                let refs = store.data().funcs[index].as_ref().expect("linked function has its JavaScript implementation");
                js::call(env, js::deref(env, refs.this), js::deref(env, refs.func), &args)
            }
            SlotKind::Method { res, js_name } => {
                let this = args.remove(0);
                match js::get(env, this, js_name) {
                    Ok(f) if js::type_of(env, f) == napi::sys::ValueType::napi_function => js::call(env, this, f, &args),
                    Ok(_) => Err(Fail::Msg(format!("the {} object has no method {js_name}", store.data().classes[*res as usize].name))),
                    Err(e) => Err(e),
                }
            }
            SlotKind::Static { res, js_name } => {
                let class = js::deref(env, store.data().classes[*res as usize].class);
                match js::get(env, class, js_name) {
                    Ok(f) if js::type_of(env, f) == napi::sys::ValueType::napi_function => js::call(env, class, f, &args),
                    Ok(_) => Err(Fail::Msg(format!("the resource class has no static function {js_name}"))),
                    Err(e) => Err(e),
                }
            }
            SlotKind::Constructor { res } => {
                let class = js::deref(env, store.data().classes[*res as usize].class);
                js::construct(env, class, &args)
            }
        };
        match outcome {
            Ok(v) => {
                let Some(rt) = result_type else { return Ok(()) };
                let lowered = match &rt {
                    Type::Result(r) => lower_top_result(env, &mut store, v, r),
                    t => convert::from_js(env, &mut store, v, t),
                };
                match lowered {
                    Ok(val) => {
                        results[0] = val;
                        Ok(())
                    }
                    Err(f) => Err(trap(&mut store, f, "converting its return value")),
                }
            }
            Err(Fail::Thrown(exc)) => {
                if let Some(Type::Result(r)) = &result_type {
                    match error_payload(env, exc) {
                        Ok(Some(payload)) => {
                            let e = match r.err() {
                                Some(t) => match convert::from_js(env, &mut store, payload, &t) {
                                    Ok(v) => Some(Box::new(v)),
                                    Err(Fail::Msg(m)) => {
                                        // Keep the original exception for the caller, with the reason in the trap.
                                        let _ = trap(&mut store, Fail::Thrown(exc), "");
                                        return Err(wasmtime::format_err!(
                                            "host import {}#{} threw an error whose payload is not its error type: {m}",
                                            slot.iface,
                                            slot.name
                                        ));
                                    }
                                    Err(f) => return Err(trap(&mut store, f, "converting its error payload")),
                                },
                                None => None,
                            };
                            results[0] = Val::Result(Err(e));
                            return Ok(());
                        }
                        Ok(None) => {}
                        Err(f) => return Err(trap(&mut store, f, "reading its error payload")),
                    }
                }
                Err(trap(&mut store, Fail::Thrown(exc), ""))
            }
            Err(f) => Err(trap(&mut store, f, "calling it")),
        }
    }
}

/// A JavaScript value returned for a function's own result<T, E>: T is ok(T);
/// an explicit { tag: 'ok' | 'err', val } is taken as it is (as jco does).
unsafe fn lower_top_result(env: js::Env, store: &mut StoreContextMut<'_, Data>, v: js::Value, r: &types::ResultType) -> js::R<Val> {
    if js::type_of(env, v) == napi::sys::ValueType::napi_object {
        let tag = js::get(env, v, "tag")?;
        if js::type_of(env, tag) == napi::sys::ValueType::napi_string {
            let t = js::get_string(env, tag)?;
            if t == "ok" || t == "err" {
                return convert::from_js(env, store, v, &Type::Result(r.clone()));
            }
        }
    }
    Ok(Val::Result(Ok(match r.ok() {
        Some(t) => Some(Box::new(convert::from_js(env, store, v, &t)?)),
        None => None,
    })))
}

/// What a thrown value means for a function that returns a result: an object
/// with a `payload` (own or inherited, e.g. a getter) gives err(payload); any
/// other thrown value that is not an Error is the payload itself (as in jco);
/// an Error without payload is a failure of the host: None.
unsafe fn error_payload(env: js::Env, exc: js::Value) -> js::R<Option<js::Value>> {
    let t = js::type_of(env, exc);
    if (t == napi::sys::ValueType::napi_object || t == napi::sys::ValueType::napi_function) && js::has(env, exc, "payload")? {
        return Ok(Some(js::get(env, exc, "payload")?));
    }
    if js::is_error(env, exc) {
        return Ok(None);
    }
    Ok(Some(exc))
}

// ---------------------------------------------------------------------------
// Engine

#[napi(object)]
pub struct EngineOptions {
    /// How often the epoch advances, in milliseconds (default 10).
    pub epoch_tick_ms: Option<u32>,
    /// Cranelift's optimization level: "speed" (the default), "none" (compiles
    /// faster, runs slower) or "speed-and-size". Part of the cache key.
    pub opt_level: Option<String>,
}

#[napi]
pub struct NativeEngine {
    engine: Engine,
    tick_ms: u32,
}

fn napi_err(e: impl std::fmt::Display) -> napi::Error {
    napi::Error::from_reason(e.to_string())
}

fn wasm_err(e: wasmtime::Error) -> napi::Error {
    napi::Error::from_reason(format!("{e:#}"))
}

#[napi]
impl NativeEngine {
    #[napi(constructor)]
    pub fn new(options: Option<EngineOptions>) -> Result<Self> {
        let (tick_ms, opt_level) = match options {
            Some(o) => (o.epoch_tick_ms.unwrap_or(10).max(1), o.opt_level),
            None => (10, None),
        };
        let mut config = Config::new();
        config.epoch_interruption(true);
        config.wasm_component_model(true);
        config.cranelift_opt_level(match opt_level.as_deref() {
            None | Some("speed") => wasmtime::OptLevel::Speed,
            Some("none") => wasmtime::OptLevel::None,
            Some("speed-and-size") => wasmtime::OptLevel::SpeedAndSize,
            Some(other) => return Err(napi_err(format!("unknown optimization level {other:?} (speed, none, speed-and-size)"))),
        });
        let engine = Engine::new(&config).map_err(wasm_err)?;
        // The ticker ends when the engine is gone.
        let weak = engine.weak();
        std::thread::Builder::new()
            .name("wasmnet-epoch".into())
            .spawn(move || loop {
                std::thread::sleep(Duration::from_millis(tick_ms as u64));
                match weak.upgrade() {
                    Some(e) => e.increment_epoch(),
                    None => break,
                }
            })
            .map_err(napi_err)?;
        Ok(NativeEngine { engine, tick_ms })
    }

    /// The wasmtime version and a hash of the compilation settings: precompiled
    /// components are only loaded by an engine with the same key.
    #[napi(getter)]
    pub fn cache_key(&self) -> String {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.engine.precompile_compatibility_hash().hash(&mut h);
        format!("wasmtime-{WASMTIME_VERSION}-{:016x}", h.finish())
    }

    #[napi(getter)]
    pub fn wasmtime_version(&self) -> String {
        WASMTIME_VERSION.to_string()
    }

    /// Compiles a component off the JavaScript thread, links it, and, when
    /// `cache_path` is given, writes the precompiled artifact there (through a
    /// temporary file and a rename).
    #[napi(ts_return_type = "Promise<NativeComponent>")]
    pub fn compile(&self, bytes: Uint8Array, cache_path: Option<String>) -> AsyncTask<CompileTask> {
        AsyncTask::new(CompileTask { engine: self.engine.clone(), bytes: bytes.to_vec(), cache_path, tick_ms: self.tick_ms })
    }

    /// Loads a precompiled component that this engine wrote with `compile`.
    /// Only ever pass files the engine wrote itself: the artifact is native
    /// code and is trusted.
    #[napi]
    pub fn load(&self, path: String) -> Result<NativeComponent> {
        let started = std::time::Instant::now();
        let component = unsafe { Component::deserialize_file(&self.engine, Path::new(&path)) }.map_err(wasm_err)?;
        let linked = link(&self.engine, &component).map_err(wasm_err)?;
        Ok(NativeComponent::new(self.engine.clone(), component, linked, "cache", started.elapsed(), self.tick_ms))
    }
}

pub struct CompileTask {
    engine: Engine,
    bytes: Vec<u8>,
    cache_path: Option<String>,
    tick_ms: u32,
}

impl Task for CompileTask {
    type Output = NativeComponent;
    type JsValue = NativeComponent;

    fn compute(&mut self) -> Result<Self::Output> {
        let started = std::time::Instant::now();
        let component = Component::new(&self.engine, &self.bytes).map_err(wasm_err)?;
        let linked = link(&self.engine, &component).map_err(wasm_err)?;
        if let Some(path) = &self.cache_path {
            let bytes = component.serialize().map_err(wasm_err)?;
            let tmp = format!("{path}.tmp-{}", std::process::id());
            std::fs::write(&tmp, &bytes).map_err(|e| napi_err(format!("writing {tmp}: {e}")))?;
            std::fs::rename(&tmp, path).map_err(|e| napi_err(format!("renaming {tmp} to {path}: {e}")))?;
        }
        Ok(NativeComponent::new(self.engine.clone(), component, linked, "compiled", started.elapsed(), self.tick_ms))
    }

    fn resolve(&mut self, _env: Env, output: Self::Output) -> Result<Self::JsValue> {
        self.bytes = Vec::new();
        Ok(output)
    }
}

// ---------------------------------------------------------------------------
// Component

#[napi(object)]
pub struct InstanceOptions {
    /// Cap on the linear memory of the instance, in bytes.
    pub memory_limit_bytes: Option<f64>,
    /// Deadline of instantiation, in milliseconds.
    pub timeout_ms: Option<f64>,
}

#[napi]
pub struct NativeComponent {
    engine: Engine,
    #[allow(dead_code)]
    component: Component,
    linked: Arc<Linked>,
    origin: &'static str,
    load_ms: f64,
    tick_ms: u32,
}

impl NativeComponent {
    fn new(engine: Engine, component: Component, linked: Linked, origin: &'static str, took: Duration, tick_ms: u32) -> Self {
        NativeComponent { engine, component, linked: Arc::new(linked), origin, load_ms: took.as_secs_f64() * 1000.0, tick_ms }
    }
}

fn ticks(timeout_ms: f64, tick_ms: u32) -> u64 {
    if !(timeout_ms > 0.0) {
        return 1;
    }
    (timeout_ms / tick_ms as f64).ceil() as u64 + 1
}

#[napi]
impl NativeComponent {
    /// "compiled" or "cache": whether this component was compiled or loaded
    /// from a precompiled file.
    #[napi(getter)]
    pub fn origin(&self) -> String {
        self.origin.to_string()
    }

    /// Milliseconds spent compiling or loading (and linking).
    #[napi(getter)]
    pub fn load_ms(&self) -> f64 {
        self.load_ms
    }

    /// The versioned names of the interfaces the component imports.
    #[napi(getter)]
    pub fn imports(&self) -> Vec<String> {
        self.linked.imports.clone()
    }

    #[napi(getter)]
    pub fn exports(&self) -> Vec<String> {
        self.linked.exports.clone()
    }

    /// [interface, function] of each exported function, in index order.
    #[napi(getter)]
    pub fn export_functions(&self) -> Vec<Vec<String>> {
        self.linked.export_funcs.iter().map(|(i, f)| vec![i.clone(), f.clone()]).collect()
    }

    /// Instantiates with the JavaScript imports, an object keyed by versioned
    /// interface name: each interface an object of functions (camelCase) and
    /// of resource classes (PascalCase), as jco takes them.
    #[napi]
    pub fn instantiate(&self, env: Env, imports: Raw, options: Option<InstanceOptions>) -> Result<NativeInstance> {
        let env = env.raw();
        let options = options.unwrap_or(InstanceOptions { memory_limit_bytes: None, timeout_ms: None });
        let limit = options.memory_limit_bytes.unwrap_or(256.0 * 1024.0 * 1024.0).max(0.0) as usize;
        let linked = self.linked.clone();
        let mut data = Data {
            env,
            limiter: Limiter { inner: StoreLimitsBuilder::new().memory_size(limit).trap_on_grow_failure(true).build(), limit, total: 0, hit: None },
            funcs: Vec::new(),
            classes: Vec::new(),
            table: HashMap::new(),
            next_rep: 0,
            borrows: Vec::new(),
            pending: None,
        };
        unsafe {
            let _scope = js::Scope::open(env);
            let fail = |m: String| napi::Error::from_reason(m);
            let iface_obj = |iface: &str| -> Result<js::Value> {
                let obj = match js::get(env, imports.0, iface) {
                    Ok(o) => o,
                    Err(_) => return Err(fail(format!("cannot read import {iface}"))),
                };
                let t = js::type_of(env, obj);
                if t != napi::sys::ValueType::napi_object && t != napi::sys::ValueType::napi_function {
                    return Err(fail(format!("the imports lack interface {iface}")));
                }
                Ok(obj)
            };
            for r in &linked.resources {
                let obj = iface_obj(&r.iface)?;
                let name = js::pascal(&r.name);
                let class = js::get(env, obj, &name).map_err(|_| fail(format!("cannot read {}.{name}", r.iface)))?;
                if js::type_of(env, class) != napi::sys::ValueType::napi_function {
                    return Err(fail(format!("import {} does not provide the resource class {name}", r.iface)));
                }
                let class = js::reference(env, class).map_err(|_| fail("reference".into()))?;
                data.classes.push(ClassRef { class, name });
            }
            for slot in &linked.slots {
                let refs = match &slot.kind {
                    SlotKind::Func { js_name } => {
                        let obj = iface_obj(&slot.iface)?;
                        let f = js::get(env, obj, js_name).map_err(|_| fail(format!("cannot read {}.{js_name}", slot.iface)))?;
                        if js::type_of(env, f) != napi::sys::ValueType::napi_function {
                            return Err(fail(format!("import {} does not provide the function {js_name} ({})", slot.iface, slot.name)));
                        }
                        let this = js::reference(env, obj).map_err(|_| fail("reference".into()))?;
                        let func = js::reference(env, f).map_err(|_| fail("reference".into()))?;
                        Some(FuncRefs { this, func })
                    }
                    _ => None,
                };
                data.funcs.push(refs);
            }
        }
        let mut store = Store::new(&self.engine, data);
        store.limiter(|d| &mut d.limiter);
        store.set_epoch_deadline(ticks(options.timeout_ms.unwrap_or(30_000.0), self.tick_ms));
        let instance = linked.pre.instantiate(&mut store).map_err(|e| {
            if store.data().limiter.hit.is_some() {
                napi::Error::from_reason(format!("instantiation exceeded the memory limit of {limit} bytes: {e:#}"))
            } else {
                wasm_err(e)
            }
        })?;
        let mut funcs = Vec::with_capacity(linked.export_funcs.len());
        let mut sigs = Vec::with_capacity(linked.export_funcs.len());
        for (iface, fname) in &linked.export_funcs {
            let iidx = instance.get_export_index(&mut store, None, iface).ok_or_else(|| napi_err(format!("export {iface} missing")))?;
            let fidx = instance.get_export_index(&mut store, Some(&iidx), fname).ok_or_else(|| napi_err(format!("export {iface}#{fname} missing")))?;
            let func = instance.get_func(&mut store, &fidx).ok_or_else(|| napi_err(format!("export {iface}#{fname} is not a function")))?;
            let fty = func.ty(&store);
            sigs.push(Sig {
                param_names: fty.params().map(|(n, _)| n.to_string()).collect(),
                params: fty.params().map(|(_, t)| t).collect(),
                result: fty.results().next(),
            });
            funcs.push(func);
        }
        Ok(NativeInstance {
            inner: RefCell::new(Some(InstanceState { store, _instance: instance, funcs, sigs, poisoned: None, linked })),
            tick_ms: self.tick_ms,
            limit,
        })
    }
}

// ---------------------------------------------------------------------------
// Instance

/// An exported function's signature, read once at instantiation.
struct Sig {
    param_names: Vec<String>,
    params: Vec<Type>,
    result: Option<Type>,
}

struct InstanceState {
    store: Store<Data>,
    _instance: Instance,
    funcs: Vec<Func>,
    sigs: Vec<Sig>,
    poisoned: Option<String>,
    linked: Arc<Linked>,
}

#[napi]
pub struct NativeInstance {
    inner: RefCell<Option<InstanceState>>,
    tick_ms: u32,
    limit: usize,
}

/// A trap's causes, innermost last, then its wasm backtrace.
fn trap_message(e: &wasmtime::Error) -> String {
    let (backtraces, causes): (Vec<String>, Vec<String>) =
        e.chain().map(|c| c.to_string()).partition(|c| c.starts_with("error while executing at wasm backtrace"));
    let mut m = causes.join(": ");
    for bt in backtraces {
        m.push('\n');
        m.push_str(bt.trim_end());
    }
    m
}

unsafe fn outcome(env: js::Env, status: u32, value: js::Value) -> Result<Raw> {
    let arr = js::array(env, 2).map_err(|_| napi_err("array"))?;
    let _ = js::set_element(env, arr, 0, js::number(env, status as f64));
    let _ = js::set_element(env, arr, 1, value);
    Ok(Raw(arr))
}

unsafe fn failure(env: js::Env, code: &str, message: &str) -> Result<Raw> {
    let obj = js::object(env).map_err(|_| napi_err("object"))?;
    let _ = js::set(env, obj, "code", js::string(env, code).unwrap_or(js::undefined(env)));
    let _ = js::set(env, obj, "message", js::string(env, message).unwrap_or(js::undefined(env)));
    outcome(env, 2, obj)
}

#[napi]
impl NativeInstance {
    /// Calls exported function `index` with `args` (an array), interrupted
    /// after `timeout_ms`. Returns [status, value] (see the top of this file).
    #[napi]
    pub fn call(&self, env: Env, index: u32, args: Raw, timeout_ms: f64) -> Result<Raw> {
        let env = env.raw();
        unsafe {
            let Ok(mut guard) = self.inner.try_borrow_mut() else {
                return failure(env, "ERR_WASM_REENTRANT", "the instance is already running a call (a host import called back into it)");
            };
            let Some(state) = guard.as_mut() else {
                return failure(env, "ERR_WASM_DISPOSED", "the instance was disposed");
            };
            if let Some(reason) = &state.poisoned {
                return failure(env, "ERR_WASM_INSTANCE_TRAPPED", &format!("the instance trapped earlier and cannot be called again (re-instantiate it): {reason}"));
            }
            let Some(func) = state.funcs.get(index as usize).copied() else {
                return failure(env, "ERR_WASM_NO_SUCH_EXPORT", &format!("no exported function {index}"));
            };
            let (iface, fname) = &state.linked.export_funcs[index as usize];
            let sig = &state.sigs[index as usize];
            let (param_names, param_types, result_type) = (&sig.param_names, &sig.params, &sig.result);
            let store = &mut state.store;
            store.data_mut().env = env;
            // Arguments.
            if !js::is_array(env, args.0) {
                return outcome(env, 4, js::string(env, "arguments must be an array").unwrap_or(js::undefined(env)));
            }
            let n = js::array_len(env, args.0).unwrap_or(0) as usize;
            if n < param_types.len() {
                let m = format!("{iface}#{fname} takes {} arguments, got {n}", param_types.len());
                return outcome(env, 4, js::string(env, &m).unwrap_or(js::undefined(env)));
            }
            let mut params = Vec::with_capacity(param_types.len());
            {
                let mut cx = store.as_context_mut();
                for (i, (name, t)) in param_names.iter().zip(param_types.iter()).enumerate() {
                    let v = js::get_element(env, args.0, i as u32).unwrap_or(js::undefined(env));
                    match convert::from_js(env, &mut cx, v, t) {
                        Ok(val) => params.push(val),
                        Err(f) => {
                            release_borrows(&mut cx);
                            return match f {
                                Fail::Msg(m) => outcome(env, 4, js::string(env, &format!("{iface}#{fname}: argument {name}: {m}")).unwrap_or(js::undefined(env))),
                                Fail::Thrown(exc) => outcome(env, 3, exc),
                            };
                        }
                    }
                }
            }
            let mut results = vec![Val::Bool(false); usize::from(result_type.is_some())];
            store.set_epoch_deadline(ticks(timeout_ms, self.tick_ms));
            store.data_mut().limiter.hit = None;
            let r = func.call(&mut *store, &params, &mut results);
            release_borrows(&mut store.as_context_mut());
            match r {
                Ok(()) => {
                    let mut cx = store.as_context_mut();
                    let converted = match (results.pop(), result_type) {
                        (None, _) | (_, None) => Ok((0, js::undefined(env))),
                        (Some(Val::Result(Ok(v))), Some(Type::Result(rt))) => match (v, rt.ok()) {
                            (Some(v), Some(t)) => convert::to_js(env, &mut cx, *v, &t).map(|x| (0, x)),
                            _ => Ok((0, js::undefined(env))),
                        },
                        (Some(Val::Result(Err(v))), Some(Type::Result(rt))) => match (v, rt.err()) {
                            (Some(v), Some(t)) => convert::to_js(env, &mut cx, *v, &t).map(|x| (1, x)),
                            _ => Ok((1, js::undefined(env))),
                        },
                        (Some(v), Some(t)) => convert::to_js(env, &mut cx, v, t).map(|x| (0, x)),
                    };
                    match converted {
                        Ok((status, v)) => outcome(env, status, v),
                        Err(Fail::Msg(m)) => failure(env, "ERR_WASM_RESULT", &format!("{iface}#{fname}: cannot convert its result: {m}")),
                        Err(Fail::Thrown(exc)) => outcome(env, 3, exc),
                    }
                }
                Err(e) => {
                    let data = store.data_mut();
                    let pending = data.pending.take();
                    let hit = data.limiter.hit.take();
                    let (code, message) = if let Some(p) = pending {
                        let exc = js::deref(env, p);
                        js::unreference(env, p);
                        state.poisoned = Some(format!("a host import threw: {e:#}"));
                        return outcome(env, 3, exc);
                    } else if matches!(e.downcast_ref::<Trap>(), Some(Trap::Interrupt)) {
                        ("ERR_WASM_DEADLINE", format!("{iface}#{fname} ran past its deadline of {timeout_ms} ms and was interrupted"))
                    } else if let Some(desired) = hit {
                        ("ERR_WASM_MEMORY_LIMIT", format!("{iface}#{fname} tried to grow its memory to {desired} bytes, over the cap of {} bytes, and was stopped", self.limit))
                    } else {
                        ("ERR_WASM_TRAP", format!("{iface}#{fname} trapped: {}", trap_message(&e)))
                    };
                    state.poisoned = Some(message.clone());
                    failure(env, code, &message)
                }
            }
        }
    }

    /// Whether a trap has made the instance unusable.
    #[napi(getter)]
    pub fn trapped(&self) -> bool {
        self.inner.try_borrow().map(|s| s.as_ref().map_or(true, |s| s.poisoned.is_some())).unwrap_or(false)
    }

    /// Handles the guest holds for host objects (for tests and leaks).
    #[napi(getter)]
    pub fn live_resources(&self) -> u32 {
        self.inner.try_borrow().map(|s| s.as_ref().map_or(0, |s| s.store.data().table.len() as u32)).unwrap_or(0)
    }

    /// Frees the instance (its store and memory) now rather than at garbage collection.
    #[napi]
    pub fn dispose(&self, env: Env) -> Result<()> {
        let mut guard = self.inner.try_borrow_mut().map_err(|_| napi_err("cannot dispose an instance while it runs a call"))?;
        if let Some(mut state) = guard.take() {
            state.store.data_mut().env = env.raw();
            drop(state);
        }
        Ok(())
    }
}
