//! UpdateService, FirmwareInventory and the update actions (SimpleUpdate, push, multipart, DellUpdateService.Install).

use super::*;

pub(super) fn update_service(ctx: &Ctx<'_>) -> Value {
    let host = ctx.host;
    let mut v = json!({
        "@odata.context": "/redfish/v1/$metadata#UpdateService.UpdateService",
        "@odata.id": "/redfish/v1/UpdateService",
        "@odata.type": "#UpdateService.v1_8_0.UpdateService",
        "Actions": {"#UpdateService.SimpleUpdate": {
            "@Redfish.OperationApplyTimeSupport": {
                "@odata.type": "#Settings.v1_3_0.OperationApplyTimeSupport",
                "SupportedValues": ["Immediate", "OnReset"],
            },
            "TransferProtocol@Redfish.AllowableValues": ["HTTP", "NFS", "CIFS", "TFTP", "HTTPS"],
            "target": "/redfish/v1/UpdateService/Actions/UpdateService.SimpleUpdate",
        }},
        "Description": "Represents the properties for the Update Service",
        "FirmwareInventory": odata_id("/redfish/v1/UpdateService/FirmwareInventory"),
        "Id": "UpdateService",
        "MaxImageSizeBytes": null,
        "MultipartHttpPushUri": "/redfish/v1/UpdateService/MultipartUpload",
        "Name": "Update Service",
        "ServiceEnabled": true,
        "Status": {"Health": "OK", "State": "Enabled"},
    });
    match host.flavor {
        Flavor::Idrac9 => {
            v.set(
                &["HttpPushUri"],
                json!("/redfish/v1/UpdateService/FirmwareInventory"),
            );
            let key = if host.strict {
                "#DellUpdateService.Install"
            } else {
                "DellUpdateService.v1_1_0#DellUpdateService.Install"
            };
            v.set(
                &["Actions", "Oem"],
                json!({key: {
                    "InstallUpon@Redfish.AllowableValues": ["Now", "NowAndReboot", "NextReboot"],
                    "target": "/redfish/v1/UpdateService/Actions/Oem/DellUpdateService.Install",
                }}),
            );
        }
        Flavor::Idrac10 => {}
        Flavor::Generic => {
            v.set(
                &[
                    "Actions",
                    "#UpdateService.SimpleUpdate",
                    "TransferProtocol@Redfish.AllowableValues",
                ],
                json!(["HTTP", "HTTPS"]),
            );
        }
    }
    v
}

pub(super) fn inventory_member_json(
    host: &Host,
    c: &crate::inventory::Component,
    which: &str,
) -> Value {
    let (version, date, id) = match which {
        "Previous" => (
            c.previous.clone().unwrap_or_default(),
            c.previous_release_date.clone(),
            if host.is_dell() {
                c.dell_id("Previous", c.previous.as_deref().unwrap_or_default())
            } else {
                format!("{}-Previous", c.generic_id)
            },
        ),
        _ => (
            c.version.clone(),
            c.release_date.clone(),
            if host.is_dell() {
                c.dell_id(which, &c.version)
            } else {
                c.generic_id.clone()
            },
        ),
    };
    let mut v = json!({
        "@odata.context": "/redfish/v1/$metadata#SoftwareInventory.SoftwareInventory",
        "@odata.id": format!("/redfish/v1/UpdateService/FirmwareInventory/{id}"),
        "@odata.type": "#SoftwareInventory.v1_2_3.SoftwareInventory",
        "Description": "Represents Firmware Inventory",
        "Id": id,
        "Name": c.name,
        "ReleaseDate": if host.strict && !date.contains('-') { "2000-01-01T00:00:00Z".to_string() } else { date.clone() },
        "SoftwareId": c.component_id,
        "Status": {"Health": "OK", "State": if which == "Previous" { "StandbyOffline" } else { "Enabled" }},
        "Updateable": true,
        "Version": version,
    });
    if host.is_dell() {
        let mut parts = version
            .split(['.', '-'])
            .map(|p| p.parse::<u64>().unwrap_or(0));
        let (ma, mi, rev) = (
            parts.next().unwrap_or(0),
            parts.next().unwrap_or(0),
            parts.next().unwrap_or(0),
        );
        let status = if which == "Previous" {
            "AvailableForInstallation"
        } else {
            "Installed"
        };
        let inst = if which == "Previous" {
            "PREVIOUS"
        } else {
            "INSTALLED"
        };
        let pci: Vec<&str> = c
            .pci
            .as_deref()
            .map(|p| p.split(':').collect())
            .unwrap_or_default();
        let identity = match &c.pci {
            Some(p) => format!("DCIM:firmware:{p}"),
            None => format!(
                "DCIM:{}:{}",
                c.kind.component_type().replace("FRMW", "firmware"),
                c.component_id
            ),
        };
        v.set(&["Oem"], json!({"Dell": {"DellSoftwareInventory": {
            "BuildNumber": 0,
            "ComponentID": c.component_id,
            "ComponentType": c.kind.component_type(),
            "Description": "The DellSoftwareInventory resource is a representation of an available device firmware in the managed system.",
            "DeviceID": pci.get(1),
            "ElementName": c.name,
            "Id": format!("DCIM:{inst}_0x23_{}", c.fqdd),
            "IdentityInfoType": [if c.pci.is_some() { "OrgID:ComponentType:VendorID:DeviceID:SubVendorID:SubDeviceID" } else { "OrgID:ComponentType:ComponentID" }],
            "IdentityInfoValue": [identity],
            "InstallationDate": if which == "Previous" { "NA".to_string() } else { date.clone() },
            "IsEntity": true,
            "MajorVersion": ma,
            "MinorVersion": mi,
            "Name": "DellSoftwareInventory",
            "RevisionNumber": rev,
            "SidebandUpdateCapable": false,
            "Status": status,
            "SubDeviceID": pci.get(3),
            "SubVendorID": pci.get(2),
            "VendorID": pci.first(),
        }}}));
    }
    v
}

/// All inventory members of the host: (id, json).
pub(super) fn inventory_members(host: &Host, st: &HostState) -> Vec<Value> {
    let mut out = Vec::new();
    for c in &st.components {
        out.push(inventory_member_json(host, c, "Installed"));
        if c.component_id == "159" && host.is_dell() {
            out.push(inventory_member_json(host, c, "Current"));
        }
    }
    for c in &st.components {
        if c.previous.is_some() && host.is_dell() {
            out.push(inventory_member_json(host, c, "Previous"));
        }
    }
    for a in &st.available {
        out.push(json!({
            "@odata.context": "/redfish/v1/$metadata#SoftwareInventory.SoftwareInventory",
            "@odata.id": format!("/redfish/v1/UpdateService/FirmwareInventory/{}", a.id),
            "@odata.type": "#SoftwareInventory.v1_2_3.SoftwareInventory",
            "Description": "Represents Firmware Inventory",
            "Id": a.id,
            "Name": a.package.name,
            "ReleaseDate": if host.strict { "2000-01-01T00:00:00Z" } else { "00:00:00Z" },
            "SoftwareId": a.package.component_id,
            "Status": {"Health": "OK", "State": "Enabled"},
            "Updateable": true,
            "Version": a.package.version,
        }));
    }
    out
}

pub(super) fn inventory_etag(st: &HostState) -> String {
    format!("W/\"inv-{}\"", st.inventory_gen)
}

pub(super) fn inventory(ctx: &Ctx<'_>) -> Reply {
    let st = ctx.host.lock();
    let members = inventory_members(ctx.host, &st);
    let id = "/redfish/v1/UpdateService/FirmwareInventory";
    let ty = "#SoftwareInventoryCollection.SoftwareInventoryCollection";
    let v = if ctx.expand() {
        expanded_collection(id, ty, "Firmware Inventory Collection", members)
    } else {
        let ids = members
            .iter()
            .filter_map(|m| m["@odata.id"].as_str().map(str::to_string))
            .collect();
        collection(id, ty, "Firmware Inventory Collection", ids)
    };
    let mut v = v;
    v.set(&["Description"], json!("Collection of Firmware Inventory"));
    Reply::ok(&v).with(header::ETAG, inventory_etag(&st))
}

pub(super) fn inventory_member(ctx: &Ctx<'_>, id: &str) -> Reply {
    let st = ctx.host.lock();
    inventory_members(ctx.host, &st)
        .into_iter()
        .find(|m| m["Id"] == id)
        .map(|m| Reply::ok(&m))
        .unwrap_or_else(|| not_found(ctx.host, ctx.path))
}

pub(super) fn http_push(ctx: &Ctx<'_>) -> Reply {
    let host = ctx.host;
    let Some(if_match) = ctx
        .headers
        .get(header::IF_MATCH)
        .and_then(|v| v.to_str().ok())
    else {
        return error(host, StatusCode::BAD_REQUEST, messages::SYS404, &[]);
    };
    {
        let st = host.lock();
        let current = inventory_etag(&st);
        let strip = |s: &str| {
            s.trim()
                .trim_start_matches("W/")
                .trim_matches('"')
                .to_string()
        };
        if if_match.trim() != "*" && strip(if_match) != strip(&current) {
            return error(
                host,
                StatusCode::PRECONDITION_FAILED,
                base::PRECONDITION_FAILED,
                &[],
            );
        }
    }
    let parts = match upload_parts(ctx) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let Some(file) = parts
        .iter()
        .find(|p| p.name == "file" || p.name == "UpdateFile" || p.filename.is_some())
    else {
        return error(
            host,
            StatusCode::BAD_REQUEST,
            base::ACTION_PARAM_MISSING,
            &["HttpPushUri".into(), "file".into()],
        );
    };
    let package = match Package::parse(&file.data) {
        Ok(p) => p,
        Err(crate::PackageError::Checksum) => {
            return error(host, StatusCode::BAD_REQUEST, messages::RED007, &[]);
        }
        Err(_) => return error(host, StatusCode::BAD_REQUEST, messages::RED008, &[]),
    };
    let mut st = host.lock();
    let id = format!(
        "Available-{}-{}",
        package.component_id.replace(':', ""),
        package.version
    );
    st.available.retain(|a| a.id != id);
    st.available.push(crate::host::Available {
        id: id.clone(),
        package: package.clone(),
    });
    st.inventory_gen += 1;
    let location = format!("/redfish/v1/UpdateService/FirmwareInventory/{id}");
    let v = json!({
        "@odata.context": "/redfish/v1/$metadata#SoftwareInventory.SoftwareInventory",
        "@odata.id": location,
        "@odata.type": "#SoftwareInventory.v1_2_3.SoftwareInventory",
        "Description": "Represents Firmware Inventory",
        "Id": id,
        "Name": package.name,
        "SoftwareId": package.component_id,
        "Status": {"Health": "OK", "State": "Enabled"},
        "Updateable": true,
        "Version": package.version,
    });
    Reply::json(StatusCode::CREATED, &v).with(header::LOCATION, location)
}

pub(super) fn upload_parts(ctx: &Ctx<'_>) -> Result<Vec<multipart::Part>, Reply> {
    let host = ctx.host;
    let ct = ctx
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let Some(b) = multipart::boundary(ct) else {
        return Err(error(
            host,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            base::UNSUPPORTED_MEDIA,
            &[],
        ));
    };
    multipart::parse(ctx.body, &b)
        .ok_or_else(|| error(host, StatusCode::BAD_REQUEST, messages::RAC0508, &[]))
}

pub(super) fn task_location(host: &Host, id: &str) -> String {
    if host.flavor == Flavor::Idrac10 {
        format!("/redfish/v1/TaskService/TaskMonitors/{id}")
    } else {
        format!("/redfish/v1/TaskService/Tasks/{id}")
    }
}

pub(super) fn accepted(host: &Host, id: &str) -> Reply {
    let loc = task_location(host, id);
    if host.flavor == Flavor::Idrac10 {
        Reply::empty(StatusCode::ACCEPTED).with(header::LOCATION, loc)
    } else {
        let v = json!({"@Message.ExtendedInfo": [ext(host, &base::SUCCESS, &[])]});
        Reply::json(StatusCode::ACCEPTED, &v).with(header::LOCATION, loc)
    }
}

/// Starts an update job.
pub(super) fn start_update(
    ctx: &Ctx<'_>,
    source: ImageSource,
    name: String,
    reboot_after: bool,
) -> Result<String, Reply> {
    let (inner, host) = (ctx.inner, ctx.host);
    let id = {
        let mut st = host.lock();
        host::create_job(
            host,
            inner,
            &mut st,
            NewJob {
                name,
                job_type: "FirmwareUpdate",
            },
        )
        .map_err(|r| refusal(host, r))?
    };
    let (i2, h2, id2) = (inner.clone(), host.clone(), id.clone());
    inner.spawn(async move { host::run_update_job(i2, h2, id2, source, reboot_after).await });
    Ok(id)
}

/// Resolves an `ImageURI` that points into the iDRAC's own inventory.
pub(super) fn local_image(ctx: &Ctx<'_>, uri: &str) -> Result<(ImageSource, String), Reply> {
    let host = ctx.host;
    let id = uri.rsplit('/').next().unwrap_or("");
    let st = host.lock();
    if let Some(a) = st.available.iter().find(|a| a.id == id) {
        let name = format!(
            "Firmware Update: {}",
            host::firmware_job_name(&a.package.name)
        );
        return Ok((ImageSource::Local(a.package.clone()), name));
    }
    for (i, c) in st.components.iter().enumerate() {
        let prev = c.previous.as_deref().map(|p| c.dell_id("Previous", p));
        let generic_prev = format!("{}-Previous", c.generic_id);
        if prev.as_deref() == Some(id) || (c.previous.is_some() && generic_prev == id) {
            let label = if c.kind == crate::PackageKind::Bios {
                "BIOS"
            } else {
                "Firmware"
            };
            return Ok((
                ImageSource::Rollback(i),
                format!("Firmware Rollback: {label}"),
            ));
        }
    }
    Err(error(host, StatusCode::BAD_REQUEST, messages::SUP024, &[]))
}

pub(super) fn simple_update(ctx: &Ctx<'_>) -> Reply {
    let host = ctx.host;
    let body = match ctx.json_body() {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Some(uri) = body.get("ImageURI").and_then(Value::as_str) else {
        return error(
            host,
            StatusCode::BAD_REQUEST,
            base::ACTION_PARAM_MISSING,
            &["UpdateService.SimpleUpdate".into(), "ImageURI".into()],
        );
    };
    let proto = body.get("TransferProtocol").and_then(Value::as_str);
    if let Some(p) = proto {
        let ok = ["HTTP", "HTTPS", "NFS", "CIFS", "TFTP"].contains(&p)
            && (host.is_dell() || ["HTTP", "HTTPS"].contains(&p));
        if !ok {
            return error(
                host,
                StatusCode::BAD_REQUEST,
                base::ACTION_PARAM_NOT_IN_LIST,
                &[
                    p.into(),
                    "TransferProtocol".into(),
                    "UpdateService.SimpleUpdate".into(),
                ],
            );
        }
    }
    if let Some(t) = body.get("@Redfish.OperationApplyTime")
        && t != "Immediate"
        && t != "OnReset"
    {
        return error(
            host,
            StatusCode::BAD_REQUEST,
            base::ACTION_PARAM_NOT_IN_LIST,
            &[
                t.to_string(),
                "@Redfish.OperationApplyTime".into(),
                "UpdateService.SimpleUpdate".into(),
            ],
        );
    }
    let (source, name) = if uri.starts_with("/redfish/v1/UpdateService/FirmwareInventory/") {
        match local_image(ctx, uri) {
            Ok(x) => x,
            Err(r) => return r,
        }
    } else {
        let full = if uri.contains("://") {
            uri.to_string()
        } else if let Some(p) = proto {
            format!("{}://{}", p.to_ascii_lowercase(), uri)
        } else {
            return error(host, StatusCode::BAD_REQUEST, messages::RED005, &[]);
        };
        if url::Url::parse(&full).is_err() {
            return error(host, StatusCode::BAD_REQUEST, messages::RED005, &[]);
        }
        (
            ImageSource::Url(full),
            "Firmware Update: update:new".to_string(),
        )
    };
    match start_update(ctx, source, name, false) {
        Ok(id) => accepted(host, &id),
        Err(r) => r,
    }
}

pub(super) fn multipart_upload(ctx: &Ctx<'_>) -> Reply {
    let host = ctx.host;
    let parts = match upload_parts(ctx) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let mut apply_time = "Immediate".to_string();
    if let Some(p) = parts.iter().find(|p| p.name == "UpdateParameters") {
        match serde_json::from_slice::<Value>(&p.data) {
            Ok(Value::Object(m)) => {
                if let Some(t) = m.get("@Redfish.OperationApplyTime").and_then(Value::as_str) {
                    apply_time = t.to_string();
                }
            }
            _ => return bad_json(host),
        }
    }
    if apply_time != "Immediate" && apply_time != "OnReset" && apply_time != "OnStartUpdateRequest"
    {
        return error(
            host,
            StatusCode::BAD_REQUEST,
            base::ACTION_PARAM_NOT_IN_LIST,
            &[
                apply_time,
                "@Redfish.OperationApplyTime".into(),
                "MultipartUpload".into(),
            ],
        );
    }
    let Some(file) = parts.iter().find(|p| {
        p.name == "UpdateFile"
            || p.name == "file"
            || (p.filename.is_some() && p.name != "UpdateParameters")
    }) else {
        return error(
            host,
            StatusCode::BAD_REQUEST,
            base::ACTION_PARAM_MISSING,
            &["MultipartUpload".into(), "UpdateFile".into()],
        );
    };
    // The file is on the iDRAC now; validation happens in the job, like a DUP.
    let name = match Package::parse(&file.data) {
        Ok(p) => format!("Firmware Update: {}", host::firmware_job_name(&p.name)),
        Err(_) => "Firmware Update: update:new".to_string(),
    };
    let source = ImageSource::Bytes(file.data.clone());
    match start_update(ctx, source, name, false) {
        Ok(id) => accepted(host, &id),
        Err(r) => r,
    }
}

pub(super) fn dell_install(ctx: &Ctx<'_>) -> Reply {
    let host = ctx.host;
    let body = match ctx.json_body() {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Some(uris) = body.get("SoftwareIdentityURIs").and_then(Value::as_array) else {
        return error(
            host,
            StatusCode::BAD_REQUEST,
            base::ACTION_PARAM_MISSING,
            &[
                "DellUpdateService.Install".into(),
                "SoftwareIdentityURIs".into(),
            ],
        );
    };
    let upon = body
        .get("InstallUpon")
        .and_then(Value::as_str)
        .unwrap_or("Now");
    if !["Now", "NowAndReboot", "NextReboot"].contains(&upon) {
        return error(
            host,
            StatusCode::BAD_REQUEST,
            base::ACTION_PARAM_NOT_IN_LIST,
            &[
                upon.into(),
                "InstallUpon".into(),
                "DellUpdateService.Install".into(),
            ],
        );
    }
    let mut first = None;
    for uri in uris {
        let Some(uri) = uri.as_str() else {
            return bad_json(host);
        };
        let (source, name) = match local_image(ctx, uri) {
            Ok(x) => x,
            Err(r) => return r,
        };
        match start_update(ctx, source, name, upon == "NowAndReboot") {
            Ok(id) => {
                first.get_or_insert(id);
            }
            Err(r) => return r,
        }
    }
    match first {
        Some(id) => accepted(host, &id),
        None => error(host, StatusCode::BAD_REQUEST, messages::SUP024, &[]),
    }
}
