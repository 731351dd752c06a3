//! Service root, `$metadata`, the OData service document and collection helpers.

use super::*;

pub(super) fn odata_id(s: impl Into<String>) -> Value {
    json!({"@odata.id": s.into()})
}

pub(super) fn collection(id: &str, ty: &str, name: &str, members: Vec<String>) -> Value {
    let n = members.len();
    let members: Vec<Value> = members.into_iter().map(odata_id).collect();
    let ctx_name = ty.trim_start_matches('#');
    json!({
        "@odata.context": format!("/redfish/v1/$metadata#{ctx_name}"),
        "@odata.id": id,
        "@odata.type": ty,
        "Description": name,
        "Members": members,
        "Members@odata.count": n,
        "Name": name,
    })
}

pub(super) fn expanded_collection(id: &str, ty: &str, name: &str, members: Vec<Value>) -> Value {
    let n = members.len();
    let ctx_name = ty.trim_start_matches('#');
    let mut v = json!({
        "@odata.context": format!("/redfish/v1/$metadata#{ctx_name}"),
        "@odata.id": id,
        "@odata.type": ty,
        "Description": name,
        "Members@odata.count": n,
        "Name": name,
    });
    // Moved in, not through `json!`, which would serialize (deep-copy)
    // every member: the expanded inventory is the fleet bench's largest
    // document.
    if let Value::Object(m) = &mut v {
        m.insert("Members".into(), Value::Array(members));
    }
    v
}

pub(super) fn uuid(host: &Host) -> String {
    let mut b = [0u8; 16];
    b[..4].copy_from_slice(b"4c4c");
    for (slot, x) in b.iter_mut().skip(4).zip(host.service_tag.bytes()) {
        *slot = x;
    }
    let h = hex::encode(&b[..16]);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

pub(super) fn redfish_version(host: &Host) -> &'static str {
    match host.flavor {
        Flavor::Idrac9 => "1.11.0",
        Flavor::Idrac10 => "1.20.1",
        Flavor::Generic => "1.15.0",
    }
}

pub(super) fn service_root(ctx: &Ctx<'_>) -> Value {
    let host = ctx.host;
    let mut v = json!({
        "@odata.context": "/redfish/v1/$metadata#ServiceRoot.ServiceRoot",
        "@odata.id": "/redfish/v1",
        "@odata.type": "#ServiceRoot.v1_6_0.ServiceRoot",
        "AccountService": odata_id("/redfish/v1/AccountService"),
        "Chassis": odata_id("/redfish/v1/Chassis"),
        "Description": "Root Service",
        "Id": "RootService",
        "Links": {"Sessions": odata_id("/redfish/v1/SessionService/Sessions")},
        "Managers": odata_id("/redfish/v1/Managers"),
        "Name": "Root Service",
        "ProtocolFeaturesSupported": {
            "ExcerptQuery": false,
            "ExpandQuery": {"ExpandAll": true, "Levels": true, "Links": true, "MaxLevels": 1, "NoLinks": true},
            "FilterQuery": false,
            "OnlyMemberQuery": false,
            "SelectQuery": true,
        },
        "RedfishVersion": redfish_version(host),
        "SessionService": odata_id("/redfish/v1/SessionService"),
        "Systems": odata_id("/redfish/v1/Systems"),
        "Tasks": odata_id("/redfish/v1/TaskService"),
        "UpdateService": odata_id("/redfish/v1/UpdateService"),
        "UUID": uuid(host),
    });
    if host.is_dell() {
        v.set(&["JobService"], odata_id("/redfish/v1/JobService"));
        v.set(
            &["Oem"],
            json!({"Dell": {
                "@odata.context": "/redfish/v1/$metadata#DellServiceRoot.DellServiceRoot",
                "@odata.type": "#DellServiceRoot.v1_0_0.DellServiceRoot",
                "IsBranded": 0,
                "ManagerMACAddress": "d0:8e:79:bb:3e:ea",
                "ServiceTag": host.service_tag,
            }}),
        );
        v.set(
            &["Product"],
            json!("Integrated Dell Remote Access Controller"),
        );
        v.set(&["Vendor"], json!("Dell"));
    } else {
        v.set(&["Product"], json!("Simulated Redfish BMC"));
        v.set(&["Vendor"], json!("Contoso"));
    }
    v
}

pub(super) fn metadata(host: &Host) -> Reply {
    let mut refs = vec![
        ("ServiceRoot", "v1_6_0"),
        ("ComputerSystemCollection", ""),
        ("ComputerSystem", "v1_10_0"),
        ("ChassisCollection", ""),
        ("Chassis", "v1_10_0"),
        ("ManagerCollection", ""),
        ("Manager", manager_version(host)),
        ("Bios", "v1_1_0"),
        ("BootOptionCollection", ""),
        ("BootOption", "v1_0_4"),
        ("SessionService", "v1_1_8"),
        ("AccountService", "v1_5_0"),
        ("ManagerAccountCollection", ""),
        ("ManagerAccount", "v1_4_0"),
        ("RoleCollection", ""),
        ("Role", "v1_2_1"),
        ("SessionCollection", ""),
        ("Session", "v1_3_0"),
        ("UpdateService", "v1_8_0"),
        ("SoftwareInventoryCollection", ""),
        ("SoftwareInventory", "v1_2_3"),
        ("TaskService", "v1_1_5"),
        ("TaskCollection", ""),
        ("Task", "v1_4_3"),
        ("Message", "v1_0_0"),
        ("Resource", "v1_0_0"),
        ("Settings", "v1_3_0"),
    ];
    if host.is_dell() {
        refs.push(("JobService", "v1_0_2"));
        refs.push(("JobCollection", ""));
        refs.push(("Job", "v1_0_5"));
    }
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<edmx:Edmx xmlns:edmx=\"http://docs.oasis-open.org/odata/ns/edmx\" Version=\"4.0\">\n",
    );
    for (ns, ver) in &refs {
        xml.push_str(&format!(
            "  <edmx:Reference Uri=\"http://redfish.dmtf.org/schemas/v1/{ns}_v1.xml\">\n    <edmx:Include Namespace=\"{ns}\"/>\n"
        ));
        if !ver.is_empty() {
            xml.push_str(&format!("    <edmx:Include Namespace=\"{ns}.{ver}\"/>\n"));
        }
        xml.push_str("  </edmx:Reference>\n");
    }
    xml.push_str("  <edmx:DataServices>\n    <Schema xmlns=\"http://docs.oasis-open.org/odata/ns/edm\" Namespace=\"Service\">\n      <EntityContainer Name=\"Service\" Extends=\"ServiceRoot.v1_6_0.ServiceContainer\"/>\n    </Schema>\n  </edmx:DataServices>\n</edmx:Edmx>\n");
    Reply {
        status: StatusCode::OK,
        body: Some(Bytes::from(xml)),
        content_type: "application/xml;charset=utf-8",
        headers: Vec::new(),
    }
}

pub(super) fn odata(host: &Host) -> Value {
    let mut entries = vec![
        ("AccountService", "/redfish/v1/AccountService"),
        ("Systems", "/redfish/v1/Systems"),
        ("Chassis", "/redfish/v1/Chassis"),
        ("Managers", "/redfish/v1/Managers"),
        ("SessionService", "/redfish/v1/SessionService"),
        ("Tasks", "/redfish/v1/TaskService"),
        ("UpdateService", "/redfish/v1/UpdateService"),
    ];
    if host.is_dell() {
        entries.push(("JobService", "/redfish/v1/JobService"));
    }
    let mut value = vec![json!({"kind": "Singleton", "name": "Service", "url": "/redfish/v1/"})];
    value.extend(
        entries
            .into_iter()
            .map(|(n, u)| json!({"kind": "Singleton", "name": n, "url": u})),
    );
    json!({"@odata.context": "/redfish/v1/$metadata", "value": value})
}
