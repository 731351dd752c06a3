//! Repair rules for odd iDRAC documents, applied to the raw JSON before the
//! typed nv-redfish model decodes it.
//!
//! nv-redfish ships Dell repairs keyed on the service root's
//! `Vendor == "Dell"`, which iDRAC9 3.x roots lack, and its decoding is
//! strict: one bad member fails the whole inventory. These rules make the
//! documents decodable on every generation, while the driver keeps the odd
//! text where the core wants it ("as the BMC gave it").

use serde_json::Value;

/// Whether `s` is an RFC 3339 date-time the typed model accepts.
fn is_datetime(s: &str) -> bool {
    chrono::DateTime::parse_from_rfc3339(s).is_ok()
}

/// A `SoftwareInventory` member: drops a `ReleaseDate` that is not a date
/// (`"00:00:00Z"` on iDRAC9), fills a missing `@odata.id` from the link the
/// collection gave, and turns a string `MessageArgs` into an array.
/// Returns the release-date text as the BMC sent it.
pub fn software_inventory(doc: &mut Value, link: Option<&str>) -> Option<String> {
    let obj = doc.as_object_mut()?;
    let date = obj
        .get("ReleaseDate")
        .and_then(Value::as_str)
        .map(str::to_owned);
    if let Some(d) = &date
        && !is_datetime(d)
    {
        obj.remove("ReleaseDate");
    }
    if !obj.contains_key("@odata.id") {
        if let Some(l) = link {
            obj.insert("@odata.id".into(), Value::String(l.into()));
        } else if let Some(id) = obj.get("Id").and_then(Value::as_str) {
            let l = format!("/redfish/v1/UpdateService/FirmwareInventory/{id}");
            obj.insert("@odata.id".into(), Value::String(l));
        }
    }
    message_args(doc);
    date
}

/// `MessageArgs: "[]"` (a string, seen on iDRAC) → an array, anywhere in
/// the document.
pub fn message_args(doc: &mut Value) {
    match doc {
        Value::Object(map) => {
            if let Some(v) = map.get_mut("MessageArgs")
                && let Value::String(s) = v
            {
                *v = serde_json::from_str::<Value>(s)
                    .ok()
                    .filter(Value::is_array)
                    .unwrap_or_else(|| Value::Array(vec![Value::String(s.clone())]));
            }
            for v in map.values_mut() {
                message_args(v);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(message_args),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bad_release_date_is_dropped_and_returned() {
        let mut v: Value = serde_json::from_str(include_str!(
            "../tests/fixtures/firmware_inventory_member_installed_nic_softwareid_0.json"
        ))
        .unwrap();
        let d = software_inventory(&mut v, None);
        assert_eq!(d.as_deref(), Some("00:00:00Z"));
        assert!(v.get("ReleaseDate").is_none());
        let good = &mut json!({"Id": "x", "ReleaseDate": "2021-01-01T00:00:00Z"});
        software_inventory(good, None);
        assert!(good.get("ReleaseDate").is_some());
        assert_eq!(
            good["@odata.id"],
            "/redfish/v1/UpdateService/FirmwareInventory/x"
        );
    }

    #[test]
    fn string_message_args_become_arrays() {
        let mut v = json!({"Messages": [{"MessageArgs": "[]"}, {"MessageArgs": "abc"}], "x": {"MessageArgs": ["ok"]}});
        message_args(&mut v);
        assert_eq!(v["Messages"][0]["MessageArgs"], json!([]));
        assert_eq!(v["Messages"][1]["MessageArgs"], json!(["abc"]));
        assert_eq!(v["x"]["MessageArgs"], json!(["ok"]));
    }
}
