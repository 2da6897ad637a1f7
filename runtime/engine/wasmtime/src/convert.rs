// Component values to JavaScript values and back, following jco's
// conventions so that the host sees the same values whichever engine runs a
// driver:
//   record → object with camelCase field names; tuple → array;
//   list<T> → array, list of a number type → the matching typed array
//     (list<u8> → Uint8Array); enum → its case name; flags → object of
//     booleans (camelCase); variant → { tag, val } (no `val` for a case
//     without payload); option<T> → T | undefined ({ tag: 'some'|'none' }
//     when T is itself an option); a result nested in a value → { tag:
//     'ok'|'err', val } (a function's own result is handled by the caller:
//     ok is returned, err thrown); u64/s64 → BigInt; char → string;
//   own/borrow of a host resource → the JavaScript object it stands for.
use crate::js::{self, msg, Fail, Value, R};
use crate::Data;
use napi::sys;
use wasmtime::component::{ResourceDynamic, ResourceType, Type, Val};
use wasmtime::StoreContextMut;

/// How a JavaScript object is handed to the guest as a resource.
pub fn resource_index(store: &StoreContextMut<'_, Data>, rt: &ResourceType) -> Option<u32> {
    let n = store.data().classes.len() as u32;
    (0..n).find(|i| ResourceType::host_dynamic(*i) == *rt)
}

fn describe(ty: &Type) -> String {
    match ty {
        Type::Bool => "bool".into(),
        Type::S8 => "s8".into(),
        Type::U8 => "u8".into(),
        Type::S16 => "s16".into(),
        Type::U16 => "u16".into(),
        Type::S32 => "s32".into(),
        Type::U32 => "u32".into(),
        Type::S64 => "s64".into(),
        Type::U64 => "u64".into(),
        Type::Float32 => "f32".into(),
        Type::Float64 => "f64".into(),
        Type::Char => "char".into(),
        Type::String => "string".into(),
        Type::List(l) => format!("list<{}>", describe(&l.ty())),
        Type::Record(r) => format!("record {{{}}}", r.fields().map(|f| f.name.to_string()).collect::<Vec<_>>().join(", ")),
        Type::Tuple(t) => format!("tuple<{}>", t.types().map(|t| describe(&t)).collect::<Vec<_>>().join(", ")),
        Type::Variant(v) => format!("variant {{{}}}", v.cases().map(|c| c.name.to_string()).collect::<Vec<_>>().join(", ")),
        Type::Enum(e) => format!("enum {{{}}}", e.names().collect::<Vec<_>>().join(", ")),
        Type::Option(o) => format!("option<{}>", describe(&o.ty())),
        Type::Result(r) => format!(
            "result<{}, {}>",
            r.ok().map(|t| describe(&t)).unwrap_or_else(|| "_".into()),
            r.err().map(|t| describe(&t)).unwrap_or_else(|| "_".into())
        ),
        Type::Flags(_) => "flags".into(),
        Type::Own(_) => "own<resource>".into(),
        Type::Borrow(_) => "borrow<resource>".into(),
        _ => "an unsupported type".into(),
    }
}

/// The typed-array kind jco uses for a list of this element type.
fn typed_kind(ty: &Type) -> Option<(i32, usize)> {
    use sys::TypedarrayType::*;
    Some(match ty {
        Type::U8 => (uint8_array, 1),
        Type::S8 => (int8_array, 1),
        Type::U16 => (uint16_array, 2),
        Type::S16 => (int16_array, 2),
        Type::U32 => (uint32_array, 4),
        Type::S32 => (int32_array, 4),
        Type::U64 => (biguint64_array, 8),
        Type::S64 => (bigint64_array, 8),
        Type::Float32 => (float32_array, 4),
        Type::Float64 => (float64_array, 8),
        _ => return None,
    })
}

fn number_bytes(v: &Val) -> Option<Vec<u8>> {
    Some(match v {
        Val::U8(n) => vec![*n],
        Val::S8(n) => n.to_le_bytes().to_vec(),
        Val::U16(n) => n.to_le_bytes().to_vec(),
        Val::S16(n) => n.to_le_bytes().to_vec(),
        Val::U32(n) => n.to_le_bytes().to_vec(),
        Val::S32(n) => n.to_le_bytes().to_vec(),
        Val::U64(n) => n.to_le_bytes().to_vec(),
        Val::S64(n) => n.to_le_bytes().to_vec(),
        Val::Float32(n) => n.to_le_bytes().to_vec(),
        Val::Float64(n) => n.to_le_bytes().to_vec(),
        _ => return None,
    })
}

/// A component value as a JavaScript value.
pub unsafe fn to_js(env: js::Env, store: &mut StoreContextMut<'_, Data>, v: Val, ty: &Type) -> R<Value> {
    Ok(match (v, ty) {
        (Val::Bool(b), _) => js::boolean(env, b),
        (Val::S8(n), _) => js::number(env, n as f64),
        (Val::U8(n), _) => js::number(env, n as f64),
        (Val::S16(n), _) => js::number(env, n as f64),
        (Val::U16(n), _) => js::number(env, n as f64),
        (Val::S32(n), _) => js::number(env, n as f64),
        (Val::U32(n), _) => js::number(env, n as f64),
        (Val::S64(n), _) => js::bigint_i64(env, n),
        (Val::U64(n), _) => js::bigint_u64(env, n),
        (Val::Float32(n), _) => js::number(env, n as f64),
        (Val::Float64(n), _) => js::number(env, n),
        (Val::Char(c), _) => js::string(env, c.encode_utf8(&mut [0; 4]))?,
        (Val::String(s), _) => js::string(env, &s)?,
        (Val::List(items), Type::List(lt)) => {
            let elem = lt.ty();
            if let Some((kind, size)) = typed_kind(&elem) {
                let mut bytes = Vec::with_capacity(items.len() * size);
                for item in &items {
                    bytes.extend(number_bytes(item).ok_or_else(|| Fail::Msg("list element is not a number".into()))?);
                }
                js::typedarray(env, kind, size, &bytes)?
            } else {
                let arr = js::array(env, items.len())?;
                for (i, item) in items.into_iter().enumerate() {
                    let x = to_js(env, store, item, &elem)?;
                    js::set_element(env, arr, i as u32, x)?;
                }
                arr
            }
        }
        (Val::Record(fields), Type::Record(rt)) => {
            let obj = js::object(env)?;
            let types: Vec<Type> = rt.fields().map(|f| f.ty).collect();
            for ((name, val), fty) in fields.into_iter().zip(types.iter()) {
                let x = to_js(env, store, val, fty)?;
                js::set(env, obj, &js::camel(&name), x)?;
            }
            obj
        }
        (Val::Tuple(items), Type::Tuple(tt)) => {
            let types: Vec<Type> = tt.types().collect();
            let arr = js::array(env, items.len())?;
            for (i, (item, t)) in items.into_iter().zip(types.iter()).enumerate() {
                let x = to_js(env, store, item, t)?;
                js::set_element(env, arr, i as u32, x)?;
            }
            arr
        }
        (Val::Variant(tag, payload), Type::Variant(vt)) => {
            let case_ty = vt.cases().find(|c| c.name == tag).and_then(|c| c.ty);
            let obj = js::object(env)?;
            js::set(env, obj, "tag", js::string(env, &tag)?)?;
            if let (Some(p), Some(t)) = (payload, case_ty) {
                let x = to_js(env, store, *p, &t)?;
                js::set(env, obj, "val", x)?;
            }
            obj
        }
        (Val::Enum(name), _) => js::string(env, &name)?,
        (Val::Option(o), Type::Option(ot)) => {
            let inner = ot.ty();
            let nested = matches!(inner, Type::Option(_));
            match o {
                None if nested => {
                    let obj = js::object(env)?;
                    js::set(env, obj, "tag", js::string(env, "none")?)?;
                    obj
                }
                None => js::undefined(env),
                Some(x) if nested => {
                    let obj = js::object(env)?;
                    js::set(env, obj, "tag", js::string(env, "some")?)?;
                    let x = to_js(env, store, *x, &inner)?;
                    js::set(env, obj, "val", x)?;
                    obj
                }
                Some(x) => to_js(env, store, *x, &inner)?,
            }
        }
        (Val::Result(r), Type::Result(rt)) => {
            let obj = js::object(env)?;
            let (tag, payload, t) = match r {
                Ok(p) => ("ok", p, rt.ok()),
                Err(p) => ("err", p, rt.err()),
            };
            js::set(env, obj, "tag", js::string(env, tag)?)?;
            let x = match (payload, t) {
                (Some(p), Some(t)) => to_js(env, store, *p, &t)?,
                _ => js::undefined(env),
            };
            js::set(env, obj, "val", x)?;
            obj
        }
        (Val::Flags(set), Type::Flags(ft)) => {
            let obj = js::object(env)?;
            for name in ft.names() {
                js::set(env, obj, &js::camel(name), js::boolean(env, set.iter().any(|s| s == name)))?;
            }
            obj
        }
        (Val::Resource(r), _) => {
            let owned = r.owned();
            let rd = ResourceDynamic::try_from_resource_any(r, &mut *store)
                .map_err(|_| Fail::Msg("the component passed one of its own resources to the host, which this engine does not support".into()))?;
            let data = store.data_mut();
            let entry = data.table.get(&rd.rep()).copied().ok_or_else(|| Fail::Msg(format!("unknown resource handle {}", rd.rep())))?;
            let obj = js::deref(env, entry.obj);
            if owned {
                // The host takes the object back: the table forgets it.
                data.table.remove(&rd.rep());
                js::unreference(env, entry.obj);
            }
            obj
        }
        (v, ty) => return msg(format!("cannot convert the component value {v:?} to {}", describe(ty))),
    })
}

fn int_in(n: f64, lo: f64, hi: f64) -> bool {
    n.fract() == 0.0 && n >= lo && n <= hi
}

unsafe fn expect_type(env: js::Env, v: Value, want: i32, ty: &Type) -> R<()> {
    let t = js::type_of(env, v);
    if t != want {
        return msg(format!("expected {} for {}, got {}", js::type_name(want), describe(ty), js::type_name(t)));
    }
    Ok(())
}

unsafe fn integer(env: js::Env, v: Value, ty: &Type, lo: f64, hi: f64) -> R<f64> {
    let t = js::type_of(env, v);
    let n = if t == sys::ValueType::napi_number {
        js::get_f64(env, v)?
    } else if t == sys::ValueType::napi_bigint {
        let (n, lossless) = js::get_bigint_i64(env, v)?;
        if !lossless {
            return msg(format!("{} out of range for {}", "bigint", describe(ty)));
        }
        n as f64
    } else {
        return msg(format!("expected a number for {}, got {}", describe(ty), js::type_name(t)));
    };
    if !int_in(n, lo, hi) {
        return msg(format!("{n} is not a valid {}", describe(ty)));
    }
    Ok(n)
}

unsafe fn is_nullish(env: js::Env, v: Value) -> bool {
    let t = js::type_of(env, v);
    t == sys::ValueType::napi_undefined || t == sys::ValueType::napi_null
}

unsafe fn object_like(env: js::Env, v: Value, ty: &Type) -> R<()> {
    let t = js::type_of(env, v);
    if t != sys::ValueType::napi_object && t != sys::ValueType::napi_function {
        return msg(format!("expected an object for {}, got {}", describe(ty), js::type_name(t)));
    }
    Ok(())
}

unsafe fn tag_of(env: js::Env, v: Value, ty: &Type) -> R<String> {
    object_like(env, v, ty)?;
    let tag = js::get(env, v, "tag")?;
    if js::type_of(env, tag) != sys::ValueType::napi_string {
        return msg(format!("expected {{ tag, val }} for {}", describe(ty)));
    }
    js::get_string(env, tag)
}

/// A JavaScript value as a component value of type `ty`. Objects handed over
/// as resources are entered in the instance's table: a borrow for the length
/// of the current export call, an own until the guest drops it.
pub unsafe fn from_js(env: js::Env, store: &mut StoreContextMut<'_, Data>, v: Value, ty: &Type) -> R<Val> {
    use sys::ValueType::*;
    Ok(match ty {
        Type::Bool => {
            expect_type(env, v, napi_boolean, ty)?;
            Val::Bool(js::get_bool(env, v)?)
        }
        Type::S8 => Val::S8(integer(env, v, ty, i8::MIN as f64, i8::MAX as f64)? as i8),
        Type::U8 => Val::U8(integer(env, v, ty, 0.0, u8::MAX as f64)? as u8),
        Type::S16 => Val::S16(integer(env, v, ty, i16::MIN as f64, i16::MAX as f64)? as i16),
        Type::U16 => Val::U16(integer(env, v, ty, 0.0, u16::MAX as f64)? as u16),
        Type::S32 => Val::S32(integer(env, v, ty, i32::MIN as f64, i32::MAX as f64)? as i32),
        Type::U32 => Val::U32(integer(env, v, ty, 0.0, u32::MAX as f64)? as u32),
        Type::S64 | Type::U64 => {
            let t = js::type_of(env, v);
            if t == napi_bigint {
                if matches!(ty, Type::U64) {
                    let (n, lossless) = js::get_bigint_u64(env, v)?;
                    if !lossless {
                        return msg("bigint out of range for u64");
                    }
                    Val::U64(n)
                } else {
                    let (n, lossless) = js::get_bigint_i64(env, v)?;
                    if !lossless {
                        return msg("bigint out of range for s64");
                    }
                    Val::S64(n)
                }
            } else if t == napi_number {
                let n = js::get_f64(env, v)?;
                let max = 9007199254740991.0;
                if matches!(ty, Type::U64) {
                    if !int_in(n, 0.0, max) {
                        return msg(format!("{n} is not a valid u64"));
                    }
                    Val::U64(n as u64)
                } else {
                    if !int_in(n, -max, max) {
                        return msg(format!("{n} is not a valid s64"));
                    }
                    Val::S64(n as i64)
                }
            } else {
                return msg(format!("expected a bigint for {}, got {}", describe(ty), js::type_name(t)));
            }
        }
        Type::Float32 => {
            expect_type(env, v, napi_number, ty)?;
            Val::Float32(js::get_f64(env, v)? as f32)
        }
        Type::Float64 => {
            expect_type(env, v, napi_number, ty)?;
            Val::Float64(js::get_f64(env, v)?)
        }
        Type::Char => {
            expect_type(env, v, napi_string, ty)?;
            let s = js::get_string(env, v)?;
            let mut cs = s.chars();
            match (cs.next(), cs.next()) {
                (Some(c), None) => Val::Char(c),
                _ => return msg(format!("{s:?} is not a single character")),
            }
        }
        Type::String => {
            expect_type(env, v, napi_string, ty)?;
            Val::String(js::get_string(env, v)?)
        }
        Type::List(lt) => {
            let elem = lt.ty();
            if js::is_typedarray(env, v) {
                let Some((kind, size)) = typed_kind(&elem) else {
                    return msg(format!("a typed array cannot be a {}", describe(ty)));
                };
                let (have, _len, bytes) = js::typedarray_bytes(env, v)?;
                // list<u8> takes the bytes of any typed array (as jco does); other lists need their own kind.
                if !(size == 1 && matches!(elem, Type::U8)) && have != kind {
                    return msg(format!("wrong typed array kind for {}", describe(ty)));
                }
                Val::List(decode_numbers(&elem, bytes))
            } else {
                if !js::is_array(env, v) {
                    return msg(format!("expected an array for {}, got {}", describe(ty), js::type_name(js::type_of(env, v))));
                }
                let n = js::array_len(env, v)?;
                let mut items = Vec::with_capacity(n as usize);
                for i in 0..n {
                    let x = js::get_element(env, v, i)?;
                    items.push(from_js(env, store, x, &elem).map_err(|e| context(e, &format!("[{i}]")))?);
                }
                Val::List(items)
            }
        }
        Type::Record(rt) => {
            object_like(env, v, ty)?;
            let mut fields = Vec::new();
            for f in rt.fields() {
                let key = js::camel(f.name);
                let x = js::get(env, v, &key)?;
                fields.push((f.name.to_string(), from_js(env, store, x, &f.ty).map_err(|e| context(e, &format!(".{key}")))?));
            }
            Val::Record(fields)
        }
        Type::Tuple(tt) => {
            let types: Vec<Type> = tt.types().collect();
            if !js::is_array(env, v) || js::array_len(env, v)? as usize != types.len() {
                return msg(format!("expected an array of {} for {}", types.len(), describe(ty)));
            }
            let mut items = Vec::with_capacity(types.len());
            for (i, t) in types.iter().enumerate() {
                let x = js::get_element(env, v, i as u32)?;
                items.push(from_js(env, store, x, t).map_err(|e| context(e, &format!("[{i}]")))?);
            }
            Val::Tuple(items)
        }
        Type::Variant(vt) => {
            let tag = tag_of(env, v, ty)?;
            let Some(case) = vt.cases().find(|c| c.name == tag) else {
                return msg(format!("{tag:?} is not a case of {}", describe(ty)));
            };
            let payload = match case.ty {
                Some(t) => {
                    let x = js::get(env, v, "val")?;
                    Some(Box::new(from_js(env, store, x, &t).map_err(|e| context(e, ".val"))?))
                }
                None => None,
            };
            Val::Variant(tag, payload)
        }
        Type::Enum(et) => {
            expect_type(env, v, napi_string, ty)?;
            let s = js::get_string(env, v)?;
            if !et.names().any(|n| n == s) {
                return msg(format!("{s:?} is not a case of {}", describe(ty)));
            }
            Val::Enum(s)
        }
        Type::Option(ot) => {
            let inner = ot.ty();
            if matches!(inner, Type::Option(_)) {
                let tag = tag_of(env, v, ty)?;
                match tag.as_str() {
                    "none" => Val::Option(None),
                    "some" => {
                        let x = js::get(env, v, "val")?;
                        Val::Option(Some(Box::new(from_js(env, store, x, &inner)?)))
                    }
                    _ => return msg(format!("{tag:?} is not some or none")),
                }
            } else if is_nullish(env, v) {
                Val::Option(None)
            } else {
                Val::Option(Some(Box::new(from_js(env, store, v, &inner)?)))
            }
        }
        Type::Result(rt) => {
            let tag = tag_of(env, v, ty)?;
            let (t, ok) = match tag.as_str() {
                "ok" => (rt.ok(), true),
                "err" => (rt.err(), false),
                _ => return msg(format!("{tag:?} is not ok or err")),
            };
            let payload = match t {
                Some(t) => {
                    let x = js::get(env, v, "val")?;
                    Some(Box::new(from_js(env, store, x, &t).map_err(|e| context(e, ".val"))?))
                }
                None => None,
            };
            Val::Result(if ok { Ok(payload) } else { Err(payload) })
        }
        Type::Flags(ft) => {
            object_like(env, v, ty)?;
            let mut set = Vec::new();
            for name in ft.names() {
                let x = js::get(env, v, &js::camel(name))?;
                if js::type_of(env, x) == napi_boolean && js::get_bool(env, x)? {
                    set.push(name.to_string());
                }
            }
            Val::Flags(set)
        }
        Type::Own(rt) | Type::Borrow(rt) => {
            let Some(idx) = resource_index(store, rt) else {
                return msg("the component's own resources cannot be passed from the host with this engine");
            };
            let data = store.data_mut();
            let class = js::deref(env, data.classes[idx as usize].class);
            if !js::instance_of(env, v, class)? {
                return Err(Fail::Msg(format!("Resource error: Not a valid \"{}\" resource.", data.classes[idx as usize].name)));
            }
            let obj = js::reference(env, v)?;
            let rep = data.enter(obj, idx);
            // A borrow is lent from an own handle in the host's table (wasmtime
            // makes a host borrow only inside a call), dropped after the call.
            let res = ResourceDynamic::new_own(rep, idx)
                .try_into_resource_any(&mut *store)
                .map_err(|e| Fail::Msg(format!("{e:#}")))?;
            if matches!(ty, Type::Borrow(_)) {
                store.data_mut().borrows.push((rep, res));
            }
            Val::Resource(res)
        }
        _ => return msg(format!("values of {} are not supported by this engine", describe(ty))),
    })
}

fn decode_numbers(elem: &Type, bytes: &[u8]) -> Vec<Val> {
    macro_rules! chunks {
        ($t:ty, $v:ident) => {
            bytes.chunks_exact(std::mem::size_of::<$t>()).map(|c| Val::$v(<$t>::from_le_bytes(c.try_into().unwrap()))).collect()
        };
    }
    match elem {
        Type::U8 => bytes.iter().map(|b| Val::U8(*b)).collect(),
        Type::S8 => bytes.iter().map(|b| Val::S8(*b as i8)).collect(),
        Type::U16 => chunks!(u16, U16),
        Type::S16 => chunks!(i16, S16),
        Type::U32 => chunks!(u32, U32),
        Type::S32 => chunks!(i32, S32),
        Type::U64 => chunks!(u64, U64),
        Type::S64 => chunks!(i64, S64),
        Type::Float32 => chunks!(f32, Float32),
        Type::Float64 => chunks!(f64, Float64),
        _ => Vec::new(),
    }
}

fn context(e: Fail, at: &str) -> Fail {
    match e {
        Fail::Msg(m) => Fail::Msg(format!("{at}: {m}")),
        t => t,
    }
}
