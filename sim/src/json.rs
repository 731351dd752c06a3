//! Panic-free helpers over `serde_json::Value` trees: the resource builders
//! add keys to objects they just built, and readers look up paths that may be
//! missing; neither may panic (the library denies indexing that can).

use serde_json::{Map, Value};

/// Path access on JSON values.
pub(crate) trait JsonExt {
    /// Sets `path` (object keys), creating intermediate objects; a non-object
    /// on the way is replaced by an object.
    fn set(&mut self, path: &[&str], val: Value);
    /// The value at `path`, `Null` when absent.
    fn at(&self, path: &[&str]) -> &Value;
}

static NULL: Value = Value::Null;

impl JsonExt for Value {
    fn set(&mut self, path: &[&str], val: Value) {
        let Some((last, parents)) = path.split_last() else {
            *self = val;
            return;
        };
        let mut cur = self;
        for key in parents {
            let Some(m) = object(cur) else { return };
            cur = m
                .entry((*key).to_string())
                .or_insert_with(|| Value::Object(Map::new()));
        }
        if let Some(m) = object(cur) {
            m.insert((*last).to_string(), val);
        }
    }

    fn at(&self, path: &[&str]) -> &Value {
        path.iter().try_fold(self, |v, k| v.get(k)).unwrap_or(&NULL)
    }
}

/// `v` as an object, turning it into an empty one first if it is not
/// (so the result is always `Some`).
fn object(v: &mut Value) -> Option<&mut Map<String, Value>> {
    if !v.is_object() {
        *v = Value::Object(Map::new());
    }
    v.as_object_mut()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn set_creates_and_at_reads() {
        let mut v = json!({"a": 1});
        v.set(&["b", "c"], json!(2));
        v.set(&["a"], json!(3));
        assert_eq!(v, json!({"a": 3, "b": {"c": 2}}));
        assert_eq!(v.at(&["b", "c"]), &json!(2));
        assert!(v.at(&["x", "y"]).is_null());
    }
}
