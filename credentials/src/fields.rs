//! Reading a username and a secret out of a parsed JSON object, shared by the
//! file and Vault providers. Messages name fields, never their values, so a
//! secret stored with the wrong type cannot leak through an error.

use crate::Credential;
use serde_json::Value;

/// Builds a credential from `object[username_field]` and
/// `object[secret_field]`; `Err` is a message naming the offending field.
pub(crate) fn credential_from(
    object: &Value,
    username_field: &str,
    secret_field: &str,
) -> Result<Credential, String> {
    let Value::Object(map) = object else {
        return Err(format!("expected an object, found {}", kind(object)));
    };
    let get = |field: &str| match map.get(field) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.as_str()),
        Some(Value::String(_)) => Err(format!("field `{field}` is empty")),
        Some(other) => Err(format!(
            "field `{field}` is {}, expected a string",
            kind(other)
        )),
        None => Err(format!("no field `{field}`")),
    };
    let username = get(username_field)?;
    let secret = get(secret_field)?;
    Ok(Credential::new(username, secret))
}

/// The JSON type of a value, for messages that must not show the value.
pub(crate) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_both_fields() {
        let c = credential_from(&json!({"u": "root", "p": "calvin"}), "u", "p").unwrap();
        assert_eq!((c.username.as_str(), c.expose()), ("root", "calvin"));
    }

    #[test]
    fn errors_name_field_not_value() {
        let cases = [
            (json!({"username": "root"}), "no field `password`"),
            (
                json!({"username": "root", "password": 12345}),
                "is a number",
            ),
            (json!({"username": "root", "password": ""}), "is empty"),
            (
                json!({"username": ["12345"], "password": "x"}),
                "`username` is an array",
            ),
            (json!("12345"), "expected an object, found a string"),
        ];
        for (value, expected) in cases {
            let message = credential_from(&value, "username", "password").unwrap_err();
            assert!(message.contains(expected), "{message}");
            assert!(!message.contains("12345"), "{message}");
        }
    }
}
