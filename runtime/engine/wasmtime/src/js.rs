// Thin helpers over raw Node-API (napi::sys). The engine converts values
// itself and must keep precise control over exceptions (a JS exception thrown
// by a host import is kept and rethrown to the caller of the export), so it
// works with raw napi_value handles rather than napi-rs's typed wrappers.
//
// Every function here must be called on the JavaScript thread that owns `env`,
// inside a handle scope (the addon is only ever entered from JavaScript).
use napi::sys;
use std::ffi::{c_void, CString};
use std::ptr;

pub type Env = sys::napi_env;
pub type Value = sys::napi_value;
pub type Ref = sys::napi_ref;

/// Why a conversion or a call failed.
pub enum Fail {
    /// A JavaScript exception was thrown (and cleared); here is its value.
    Thrown(Value),
    /// A failure described in words (a type mismatch, a missing property).
    Msg(String),
}

pub type R<T> = Result<T, Fail>;

pub fn msg<T>(m: impl Into<String>) -> R<T> {
    Err(Fail::Msg(m.into()))
}

/// Turns a Node-API status into a result; a pending exception is taken.
unsafe fn check(env: Env, status: sys::napi_status, what: &str) -> R<()> {
    if status == sys::Status::napi_ok {
        return Ok(());
    }
    let mut pending = false;
    sys::napi_is_exception_pending(env, &mut pending);
    if pending {
        let mut exc = ptr::null_mut();
        sys::napi_get_and_clear_last_exception(env, &mut exc);
        return Err(Fail::Thrown(exc));
    }
    msg(format!("{what} failed (napi status {status})"))
}

pub unsafe fn type_of(env: Env, v: Value) -> i32 {
    let mut t = 0;
    sys::napi_typeof(env, v, &mut t);
    t
}

#[allow(non_upper_case_globals)]
pub fn type_name(t: i32) -> &'static str {
    use sys::ValueType::*;
    match t {
        napi_undefined => "undefined",
        napi_null => "null",
        napi_boolean => "a boolean",
        napi_number => "a number",
        napi_string => "a string",
        napi_symbol => "a symbol",
        napi_object => "an object",
        napi_function => "a function",
        napi_bigint => "a bigint",
        _ => "an external value",
    }
}

pub unsafe fn undefined(env: Env) -> Value {
    let mut v = ptr::null_mut();
    sys::napi_get_undefined(env, &mut v);
    v
}

pub unsafe fn boolean(env: Env, b: bool) -> Value {
    let mut v = ptr::null_mut();
    sys::napi_get_boolean(env, b, &mut v);
    v
}

pub unsafe fn number(env: Env, n: f64) -> Value {
    let mut v = ptr::null_mut();
    sys::napi_create_double(env, n, &mut v);
    v
}

pub unsafe fn bigint_u64(env: Env, n: u64) -> Value {
    let mut v = ptr::null_mut();
    sys::napi_create_bigint_uint64(env, n, &mut v);
    v
}

pub unsafe fn bigint_i64(env: Env, n: i64) -> Value {
    let mut v = ptr::null_mut();
    sys::napi_create_bigint_int64(env, n, &mut v);
    v
}

pub unsafe fn string(env: Env, s: &str) -> R<Value> {
    let mut v = ptr::null_mut();
    let st = sys::napi_create_string_utf8(env, s.as_ptr().cast(), s.len() as isize, &mut v);
    check(env, st, "creating a string")?;
    Ok(v)
}

pub unsafe fn object(env: Env) -> R<Value> {
    let mut v = ptr::null_mut();
    check(env, sys::napi_create_object(env, &mut v), "creating an object")?;
    Ok(v)
}

pub unsafe fn array(env: Env, len: usize) -> R<Value> {
    let mut v = ptr::null_mut();
    check(env, sys::napi_create_array_with_length(env, len, &mut v), "creating an array")?;
    Ok(v)
}

pub unsafe fn set_element(env: Env, arr: Value, i: u32, v: Value) -> R<()> {
    check(env, sys::napi_set_element(env, arr, i, v), "setting an array element")
}

pub unsafe fn get_element(env: Env, arr: Value, i: u32) -> R<Value> {
    let mut v = ptr::null_mut();
    check(env, sys::napi_get_element(env, arr, i, &mut v), "reading an array element")?;
    Ok(v)
}

pub unsafe fn is_array(env: Env, v: Value) -> bool {
    let mut b = false;
    sys::napi_is_array(env, v, &mut b);
    b
}

pub unsafe fn array_len(env: Env, v: Value) -> R<u32> {
    let mut n = 0;
    check(env, sys::napi_get_array_length(env, v, &mut n), "reading an array length")?;
    Ok(n)
}

fn cstr(name: &str) -> R<CString> {
    CString::new(name).map_err(|_| Fail::Msg(format!("property name {name:?} has a NUL")))
}

pub unsafe fn set(env: Env, obj: Value, name: &str, v: Value) -> R<()> {
    let key = cstr(name)?;
    check(env, sys::napi_set_named_property(env, obj, key.as_ptr(), v), "setting a property")
}

/// `obj[name]`; runs getters, so it may throw.
pub unsafe fn get(env: Env, obj: Value, name: &str) -> R<Value> {
    let key = cstr(name)?;
    let mut v = ptr::null_mut();
    check(env, sys::napi_get_named_property(env, obj, key.as_ptr(), &mut v), "reading a property")?;
    Ok(v)
}

/// `name in obj` (own or inherited).
pub unsafe fn has(env: Env, obj: Value, name: &str) -> R<bool> {
    let key = cstr(name)?;
    let mut b = false;
    check(env, sys::napi_has_named_property(env, obj, key.as_ptr(), &mut b), "looking up a property")?;
    Ok(b)
}

pub unsafe fn get_string(env: Env, v: Value) -> R<String> {
    let mut len = 0usize;
    check(env, sys::napi_get_value_string_utf8(env, v, ptr::null_mut(), 0, &mut len), "reading a string")?;
    let mut buf = vec![0u8; len + 1];
    let mut written = 0usize;
    check(env, sys::napi_get_value_string_utf8(env, v, buf.as_mut_ptr().cast(), len + 1, &mut written), "reading a string")?;
    buf.truncate(written);
    // Node-API replaces lone surrogates, so the bytes are valid UTF-8.
    Ok(String::from_utf8(buf).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
}

pub unsafe fn get_f64(env: Env, v: Value) -> R<f64> {
    let mut n = 0f64;
    check(env, sys::napi_get_value_double(env, v, &mut n), "reading a number")?;
    Ok(n)
}

pub unsafe fn get_bool(env: Env, v: Value) -> R<bool> {
    let mut b = false;
    check(env, sys::napi_get_value_bool(env, v, &mut b), "reading a boolean")?;
    Ok(b)
}

/// A BigInt as u64, and whether it fitted without loss.
pub unsafe fn get_bigint_u64(env: Env, v: Value) -> R<(u64, bool)> {
    let mut n = 0u64;
    let mut lossless = false;
    check(env, sys::napi_get_value_bigint_uint64(env, v, &mut n, &mut lossless), "reading a bigint")?;
    Ok((n, lossless))
}

pub unsafe fn get_bigint_i64(env: Env, v: Value) -> R<(i64, bool)> {
    let mut n = 0i64;
    let mut lossless = false;
    check(env, sys::napi_get_value_bigint_int64(env, v, &mut n, &mut lossless), "reading a bigint")?;
    Ok((n, lossless))
}

pub unsafe fn is_typedarray(env: Env, v: Value) -> bool {
    let mut b = false;
    sys::napi_is_typedarray(env, v, &mut b);
    b
}

/// The element type and the bytes of a typed array.
pub unsafe fn typedarray_bytes<'a>(env: Env, v: Value) -> R<(i32, usize, &'a [u8])> {
    let mut ty = 0;
    let mut len = 0usize;
    let mut data: *mut c_void = ptr::null_mut();
    let mut ab = ptr::null_mut();
    let mut off = 0usize;
    check(env, sys::napi_get_typedarray_info(env, v, &mut ty, &mut len, &mut data, &mut ab, &mut off), "reading a typed array")?;
    let elem = match ty {
        sys::TypedarrayType::int8_array | sys::TypedarrayType::uint8_array | sys::TypedarrayType::uint8_clamped_array => 1,
        sys::TypedarrayType::int16_array | sys::TypedarrayType::uint16_array => 2,
        sys::TypedarrayType::int32_array | sys::TypedarrayType::uint32_array | sys::TypedarrayType::float32_array => 4,
        _ => 8,
    };
    let bytes = if len == 0 || data.is_null() { &[][..] } else { std::slice::from_raw_parts(data as *const u8, len * elem) };
    Ok((ty, len, bytes))
}

/// A new typed array of `ty` holding a copy of `bytes`.
pub unsafe fn typedarray(env: Env, ty: i32, elem_size: usize, bytes: &[u8]) -> R<Value> {
    let mut data: *mut c_void = ptr::null_mut();
    let mut ab = ptr::null_mut();
    check(env, sys::napi_create_arraybuffer(env, bytes.len(), &mut data, &mut ab), "creating an ArrayBuffer")?;
    if !bytes.is_empty() {
        ptr::copy_nonoverlapping(bytes.as_ptr(), data as *mut u8, bytes.len());
    }
    let mut v = ptr::null_mut();
    check(env, sys::napi_create_typedarray(env, ty, bytes.len() / elem_size, ab, 0, &mut v), "creating a typed array")?;
    Ok(v)
}

pub unsafe fn instance_of(env: Env, obj: Value, class: Value) -> R<bool> {
    let mut b = false;
    check(env, sys::napi_instanceof(env, obj, class, &mut b), "instanceof")?;
    Ok(b)
}

pub unsafe fn is_error(env: Env, v: Value) -> bool {
    let mut b = false;
    sys::napi_is_error(env, v, &mut b);
    b
}

pub unsafe fn call(env: Env, this: Value, f: Value, args: &[Value]) -> R<Value> {
    let mut v = ptr::null_mut();
    let st = sys::napi_call_function(env, this, f, args.len(), args.as_ptr(), &mut v);
    check(env, st, "calling a function")?;
    Ok(v)
}

pub unsafe fn construct(env: Env, class: Value, args: &[Value]) -> R<Value> {
    let mut v = ptr::null_mut();
    let st = sys::napi_new_instance(env, class, args.len(), args.as_ptr(), &mut v);
    check(env, st, "constructing an object")?;
    Ok(v)
}

/// A strong reference, so the value outlives the current handle scope.
pub unsafe fn reference(env: Env, v: Value) -> R<Ref> {
    let mut r = ptr::null_mut();
    check(env, sys::napi_create_reference(env, v, 1, &mut r), "creating a reference")?;
    Ok(r)
}

pub unsafe fn deref(env: Env, r: Ref) -> Value {
    let mut v = ptr::null_mut();
    sys::napi_get_reference_value(env, r, &mut v);
    v
}

pub unsafe fn unreference(env: Env, r: Ref) {
    if !r.is_null() {
        sys::napi_delete_reference(env, r);
    }
}

pub struct Scope {
    env: Env,
    scope: sys::napi_handle_scope,
}

impl Scope {
    pub unsafe fn open(env: Env) -> Scope {
        let mut scope = ptr::null_mut();
        sys::napi_open_handle_scope(env, &mut scope);
        Scope { env, scope }
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        unsafe {
            sys::napi_close_handle_scope(self.env, self.scope);
        }
    }
}

/// A raw JavaScript value as a napi-rs parameter or return value.
pub struct Raw(pub Value);

impl napi::bindgen_prelude::FromNapiValue for Raw {
    unsafe fn from_napi_value(_env: sys::napi_env, v: sys::napi_value) -> napi::Result<Self> {
        Ok(Raw(v))
    }
}

impl napi::bindgen_prelude::ToNapiValue for Raw {
    unsafe fn to_napi_value(_env: sys::napi_env, v: Self) -> napi::Result<sys::napi_value> {
        Ok(v.0)
    }
}

impl napi::bindgen_prelude::TypeName for Raw {
    fn type_name() -> &'static str {
        "unknown"
    }
    fn value_type() -> napi::ValueType {
        napi::ValueType::Unknown
    }
}

impl napi::bindgen_prelude::ValidateNapiValue for Raw {}

/// camelCase of a kebab-case WIT name, as jco writes it (`address-ipv6` → `addressIpv6`).
pub fn camel(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for (i, word) in name.split('-').enumerate() {
        if i == 0 {
            out.push_str(word);
        } else {
            let mut cs = word.chars();
            if let Some(c) = cs.next() {
                out.extend(c.to_uppercase());
                out.push_str(cs.as_str());
            }
        }
    }
    out
}

/// PascalCase of a kebab-case WIT name (`join-info` → `JoinInfo`), jco's class names.
pub fn pascal(name: &str) -> String {
    let c = camel(name);
    let mut cs = c.chars();
    match cs.next() {
        Some(f) => f.to_uppercase().chain(cs).collect(),
        None => c,
    }
}
