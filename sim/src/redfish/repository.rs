//! DellSoftwareInstallationService: InstallFromRepository and GetRepoBasedUpdateList.

use super::*;

pub(super) fn install_from_repository(ctx: &Ctx<'_>) -> Reply {
    let host = ctx.host;
    let body = match ctx.json_body() {
        Ok(b) => b,
        Err(r) => return r,
    };
    let s = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_string);
    let share_type = s("ShareType")
        .unwrap_or_else(|| "HTTPS".into())
        .to_ascii_uppercase();
    let Some(ip) = s("IPAddress") else {
        return error(
            host,
            StatusCode::BAD_REQUEST,
            base::ACTION_PARAM_MISSING,
            &["InstallFromRepository".into(), "IPAddress".into()],
        );
    };
    if !["NFS", "CIFS", "HTTP", "HTTPS", "FTP", "TFTP", "LOCAL"].contains(&share_type.as_str()) {
        return error(
            host,
            StatusCode::BAD_REQUEST,
            base::ACTION_PARAM_NOT_IN_LIST,
            &[
                share_type,
                "ShareType".into(),
                "InstallFromRepository".into(),
            ],
        );
    }
    let apply = match body.get("ApplyUpdate") {
        None => true,
        Some(Value::String(v)) if v.eq_ignore_ascii_case("true") => true,
        Some(Value::String(v)) if v.eq_ignore_ascii_case("false") => false,
        Some(v) => {
            return error(
                host,
                StatusCode::BAD_REQUEST,
                base::PROPERTY_VALUE_TYPE,
                &[v.to_string(), "ApplyUpdate".into()],
            );
        }
    };
    let reboot = match body.get("RebootNeeded") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(v) => {
            return error(
                host,
                StatusCode::BAD_REQUEST,
                base::PROPERTY_VALUE_TYPE,
                &[v.to_string(), "RebootNeeded".into()],
            );
        }
    };
    let flag = |k: &str| {
        body.get(k).is_some_and(|v| {
            v.as_bool() == Some(true) || v.as_str().is_some_and(|s| s.eq_ignore_ascii_case("true"))
        })
    };
    let share = s("ShareName").unwrap_or_default();
    let file = s("CatalogFile").unwrap_or_else(|| "Catalog.xml".into());
    let mut path = String::new();
    for part in [share.trim_matches('/'), file.trim_matches('/')] {
        if !part.is_empty() {
            path.push('/');
            path.push_str(part);
        }
    }
    let catalog_url = format!("{}://{}{}", share_type.to_ascii_lowercase(), ip, path);
    let req = RepoRequest {
        catalog_url,
        apply,
        reboot,
        same_versions: flag("ApplySameVersions"),
        downgrades: flag("ApplyDowngradeVersions"),
    };
    let id = {
        let mut st = host.lock();
        match host::create_job(
            host,
            ctx.inner,
            &mut st,
            NewJob {
                name: "Repository Update".into(),
                job_type: "RepositoryUpdate",
            },
        ) {
            Ok(id) => id,
            Err(r) => return refusal(host, r),
        }
    };
    let (i2, h2, id2) = (ctx.inner.clone(), host.clone(), id.clone());
    ctx.inner
        .spawn(async move { host::run_repo_job(i2, h2, id2, req).await });
    accepted(host, &id)
}

pub(super) fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `Target` of a `DCIM_RepoUpdateSWID`: the installed instance with its
/// device-class prefix. 741 (BIOS), 701 (NIC), 802 (Diagnostics) and the
/// iDRAC form are as in a real iDRAC9 6.10 answer
/// (fx:repo_based_update_list_packagelist_idrac9_6.10.xml); the RAID and
/// CPLD prefixes are simulator values (no capture shows them).
fn installed_target(c: &crate::inventory::Component) -> String {
    use crate::PackageKind as K;
    let class = match c.kind {
        K::Idrac => return "DCIM:INSTALLED#iDRAC.Embedded.1-1#IDRACinfo".to_string(),
        K::Bios => "741__",
        K::Diagnostics => "802__",
        K::Raid => "301_C_",
        K::Cpld => "803__",
        _ => "701__",
    };
    format!("DCIM:INSTALLED#{class}{}", c.fqdd)
}

pub(super) fn repo_update_list(ctx: &Ctx<'_>) -> Reply {
    let host = ctx.host;
    let st = host.lock();
    let entries = match &st.repo {
        Some(e) if !e.is_empty() => e,
        _ => return error(host, StatusCode::BAD_REQUEST, messages::SUP029, &[]),
    };
    let mut xml = String::from(
        "<?xml version=\"1.0\"?>\n<CIM xmlns:fo=\"http://www.w3.org/1999/XSL/Format\" CIMVERSION=\"2.0\" DTDVERSION=\"2.0\">\n  <MESSAGE ID=\"4711\" PROTOCOLVERSION=\"1.0\">\n    <SIMPLEREQ>\n",
    );
    for e in entries {
        let Some(c) = st.components.get(e.comp) else {
            continue;
        };
        let target = installed_target(c);
        let prop = |n: &str, v: &str| {
            format!(
                "<PROPERTY NAME=\"{n}\" TYPE=\"string\"><VALUE>{}</VALUE></PROPERTY>",
                xml_escape(v)
            )
        };
        let arr = |n: &str, v: &[String]| {
            let vals: String = v
                .iter()
                .map(|x| format!("<VALUE>{}</VALUE>", xml_escape(x)))
                .collect();
            format!(
                "<PROPERTY.ARRAY NAME=\"{n}\" TYPE=\"string\"><VALUE.ARRAY>{vals}</VALUE.ARRAY></PROPERTY.ARRAY>"
            )
        };
        let pci: Vec<String> = c.pci.iter().cloned().collect();
        let info_name: Vec<String> = if pci.is_empty() {
            vec![]
        } else {
            vec!["VendorID:DeviceID:SubVendorID:SubDeviceID".into()]
        };
        xml.push_str(
            "      <VALUE.NAMEDINSTANCE>\n        <INSTANCENAME CLASSNAME=\"DCIM_RepoUpdateSWID\">",
        );
        xml.push_str(&prop(
            "Criticality",
            if e.criticality.is_empty() {
                "1"
            } else {
                &e.criticality
            },
        ));
        xml.push_str(&prop("DisplayName", &c.name));
        xml.push_str("<PROPERTY NAME=\"BaseLocation\" TYPE=\"string\"><VALUE/></PROPERTY>");
        xml.push_str(&prop("PackagePath", &e.package_path));
        xml.push_str(&prop("PackageName", &e.package_name));
        xml.push_str(&prop("PackageVersion", &e.version));
        xml.push_str(&prop("RebootType", e.reboot_type));
        xml.push_str(&prop("JobID", &e.job_id));
        xml.push_str(&prop("Target", &target));
        xml.push_str(&prop("ComponentID", &c.component_id));
        xml.push_str(&prop("ComponentType", c.kind.component_type()));
        xml.push_str(&arr("ComponentInfoValue", &pci));
        xml.push_str(&arr("ComponentInfoName", &info_name));
        xml.push_str(&arr("ComponentInfoTarget", std::slice::from_ref(&target)));
        xml.push_str(&arr(
            "ComponentInstalledVersion",
            std::slice::from_ref(&e.installed),
        ));
        xml.push_str("\n  </INSTANCENAME>\n      </VALUE.NAMEDINSTANCE>\n");
    }
    xml.push_str("    </SIMPLEREQ>\n  </MESSAGE>\n</CIM>\n");
    let mut v = json!({"PackageList": xml});
    v.set(
        &["@Message.ExtendedInfo"],
        json!([ext(host, &messages::SYS413, &[])]),
    );
    Reply::ok(&v)
}
