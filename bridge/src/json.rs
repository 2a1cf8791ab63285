//! Reading and setting members of JSON objects (claims, registration
//! responses) without the panics of `value[key] = …`.

use serde_json::Value;

/// Sets `key` in a JSON object (does nothing to other values, instead of
/// panicking as `value[key] = …` would).
pub fn set(v: &mut Value, key: &str, x: Value) {
    if let Value::Object(m) = v {
        m.insert(key.to_string(), x);
    }
}

/// Reads `key` of a JSON object (`null` if it is absent or `v` is not an
/// object).
pub fn get<'a>(v: &'a Value, key: &str) -> &'a Value {
    v.get(key).unwrap_or(&Value::Null)
}
