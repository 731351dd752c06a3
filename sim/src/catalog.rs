//! Dell-format `Catalog.xml`: a writer for simulator packages and the reader
//! the simulated iDRACs use for `InstallFromRepository`.
//!
//! The writer produces a `<Manifest>` with one `<SoftwareComponent>` per
//! package (path, `vendorVersion`, `hashMD5`, `size`, `rebootRequired`,
//! `ComponentType`, `Category`, `SupportedDevices/Device@componentID` with
//! `PCIInfo` for PCI packages, `SupportedSystems/Brand/Model@systemID` as
//! 4-digit uppercase hex), encoded UTF-16LE with a BOM like Dell's catalogs
//! (or UTF-8).

use std::io::Cursor;

use md5::{Digest as _, Md5};
use quick_xml::Writer;
use quick_xml::events::{BytesCData, BytesDecl, BytesEnd, BytesStart, BytesText, Event};

use crate::package::{Package, PackageKind};

/// Text encoding of a written catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Encoding {
    /// UTF-16 little endian with a byte-order mark (what Dell publishes).
    #[default]
    Utf16Le,
    /// UTF-8 without BOM.
    Utf8,
}

/// Catalog-wide settings.
#[derive(Debug, Clone)]
pub struct CatalogOptions {
    /// `baseLocation` (host[/path] without scheme, or empty = relative to the catalog).
    pub base_location: String,
    /// `baseLocationAccessProtocols` (e.g. `HTTP`).
    pub protocols: String,
    /// Catalog `version` attribute (e.g. `25.04.28`).
    pub version: String,
    /// Output encoding.
    pub encoding: Encoding,
}

impl Default for CatalogOptions {
    fn default() -> Self {
        Self {
            base_location: String::new(),
            protocols: "HTTP".into(),
            version: "25.06.02".into(),
            encoding: Encoding::Utf16Le,
        }
    }
}

/// One package in a catalog.
#[derive(Debug, Clone)]
pub struct CatalogEntry {
    /// The package.
    pub package: Package,
    /// Path relative to `baseLocation` (e.g. `FOLDER01/1/BIOS_SIM159_WN64_2.19.1.EXE`).
    pub path: String,
    /// The package file bytes (for `size` and `hashMD5`).
    pub bytes: Vec<u8>,
}

impl CatalogEntry {
    /// An entry whose path is the package's file name.
    pub fn new(package: Package, bytes: Vec<u8>) -> Self {
        let path = package.file_name();
        Self {
            package,
            path,
            bytes,
        }
    }
}

/// Errors while writing or reading catalogs.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// XML could not be written.
    #[error("cannot write catalog XML: {0}")]
    Write(String),
    /// XML could not be parsed.
    #[error("cannot parse catalog XML: {0}")]
    Parse(String),
}

fn model_name(system_id: u32) -> &'static str {
    match system_id {
        1814 => "R640",
        2300 => "R6515",
        2973 => "R660XS",
        3290 => "R670",
        _ => "PowerEdge",
    }
}

/// Writes a Dell-format catalog describing `entries`.
pub fn write(entries: &[CatalogEntry], opts: &CatalogOptions) -> Result<Vec<u8>, CatalogError> {
    let xml = write_string(entries, opts)?;
    Ok(match opts.encoding {
        Encoding::Utf8 => xml.into_bytes(),
        Encoding::Utf16Le => {
            let mut out = vec![0xFF, 0xFE];
            for unit in xml.encode_utf16() {
                out.extend_from_slice(&unit.to_le_bytes());
            }
            out
        }
    })
}

fn write_string(entries: &[CatalogEntry], opts: &CatalogOptions) -> Result<String, CatalogError> {
    let e = |err: std::io::Error| CatalogError::Write(err.to_string());
    let mut w = Writer::new_with_indent(Cursor::new(Vec::new()), b' ', 2);
    let enc = match opts.encoding {
        Encoding::Utf16Le => "utf-16",
        Encoding::Utf8 => "utf-8",
    };
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some(enc), None)))
        .map_err(e)?;
    let mut root = BytesStart::new("Manifest");
    root.push_attribute(("baseLocation", opts.base_location.as_str()));
    root.push_attribute(("baseLocationAccessProtocols", opts.protocols.as_str()));
    root.push_attribute(("dateTime", "2025-06-02T08:00:00+00:00"));
    root.push_attribute(("identifier", "5e1b6c1e-3f0a-4c2b-9d1e-f1f1f1f1f1f1"));
    root.push_attribute(("releaseID", "SIM01"));
    root.push_attribute(("version", opts.version.as_str()));
    w.write_event(Event::Start(root)).map_err(e)?;
    display(&mut w, "ReleaseNotes", "Release Notes").map_err(e)?;
    for (i, entry) in entries.iter().enumerate() {
        let p = &entry.package;
        let md5 = hex::encode(Md5::digest(&entry.bytes));
        let size = entry.bytes.len().to_string();
        let release_id = format!("S{:04}", i % 10000);
        let mut sc = BytesStart::new("SoftwareComponent");
        for (k, v) in [
            ("dateTime", "2025-06-02T08:00:00+00:00"),
            ("dellVersion", "A00"),
            ("hashMD5", md5.as_str()),
            ("packageID", release_id.as_str()),
            ("packageType", "LW64"),
            ("path", entry.path.as_str()),
            (
                "rebootRequired",
                if p.reboot_required { "true" } else { "false" },
            ),
            ("releaseDate", "June 02, 2025"),
            ("releaseID", release_id.as_str()),
            ("schemaVersion", "2.4"),
            ("size", size.as_str()),
            ("vendorVersion", p.version.as_str()),
        ] {
            sc.push_attribute((k, v));
        }
        w.write_event(Event::Start(sc)).map_err(e)?;
        display(&mut w, "Name", &format!("{},{}", p.name, p.version)).map_err(e)?;
        let ct = p.kind.component_type();
        valued(
            &mut w,
            "ComponentType",
            ct,
            match ct {
                "BIOS" => "BIOS",
                "APAC" => "Application",
                _ => "Firmware",
            },
        )
        .map_err(e)?;
        display(
            &mut w,
            "Description",
            &format!("This release contains {} version {}.", p.name, p.version),
        )
        .map_err(e)?;
        valued(&mut w, "LUCategory", "NONE", "NONE").map_err(e)?;
        valued(&mut w, "Category", p.kind.category(), p.kind.category()).map_err(e)?;
        w.write_event(Event::Start(BytesStart::new("SupportedDevices")))
            .map_err(e)?;
        let pci = pci_parts(&p.component_id);
        let mut dev = BytesStart::new("Device");
        let cid = if pci.is_some() {
            "0"
        } else {
            p.component_id.as_str()
        };
        dev.push_attribute(("componentID", cid));
        dev.push_attribute((
            "embedded",
            if p.kind == PackageKind::Nic { "0" } else { "1" },
        ));
        w.write_event(Event::Start(dev)).map_err(e)?;
        if let Some([v, d, sv, sd]) = pci {
            let mut pi = BytesStart::new("PCIInfo");
            pi.push_attribute(("deviceID", d.as_str()));
            pi.push_attribute(("subDeviceID", sd.as_str()));
            pi.push_attribute(("subVendorID", sv.as_str()));
            pi.push_attribute(("vendorID", v.as_str()));
            w.write_event(Event::Empty(pi)).map_err(e)?;
        }
        display_inner(&mut w, &p.name).map_err(e)?;
        w.write_event(Event::End(BytesEnd::new("Device")))
            .map_err(e)?;
        w.write_event(Event::End(BytesEnd::new("SupportedDevices")))
            .map_err(e)?;
        let mut crit = BytesStart::new("Criticality");
        crit.push_attribute(("value", "1"));
        w.write_event(Event::Start(crit)).map_err(e)?;
        display_inner(&mut w, "Recommended-").map_err(e)?;
        w.write_event(Event::End(BytesEnd::new("Criticality")))
            .map_err(e)?;
        w.write_event(Event::Start(BytesStart::new("SupportedSystems")))
            .map_err(e)?;
        let mut brand = BytesStart::new("Brand");
        brand.push_attribute(("key", "3"));
        brand.push_attribute(("prefix", "PE"));
        w.write_event(Event::Start(brand)).map_err(e)?;
        display_inner(&mut w, "PowerEdge").map_err(e)?;
        for sid in &p.system_ids {
            let hexid = format!("{sid:04X}");
            let mut m = BytesStart::new("Model");
            m.push_attribute(("systemID", hexid.as_str()));
            m.push_attribute(("systemIDType", "BIOS"));
            w.write_event(Event::Start(m)).map_err(e)?;
            display_inner(&mut w, model_name(*sid)).map_err(e)?;
            w.write_event(Event::End(BytesEnd::new("Model")))
                .map_err(e)?;
        }
        w.write_event(Event::End(BytesEnd::new("Brand")))
            .map_err(e)?;
        w.write_event(Event::End(BytesEnd::new("SupportedSystems")))
            .map_err(e)?;
        w.write_event(Event::End(BytesEnd::new("SoftwareComponent")))
            .map_err(e)?;
    }
    w.write_event(Event::End(BytesEnd::new("Manifest")))
        .map_err(e)?;
    String::from_utf8(w.into_inner().into_inner())
        .map_err(|err| CatalogError::Write(err.to_string()))
}

fn pci_parts(id: &str) -> Option<[String; 4]> {
    let parts: Vec<&str> = id.split(':').collect();
    let [a, b, c, d] = parts.as_slice() else {
        return None;
    };
    let hex4 = |p: &&str| p.len() == 4 && p.chars().all(|c| c.is_ascii_hexdigit());
    if [a, b, c, d].into_iter().all(hex4) {
        Some([a, b, c, d].map(|p| p.to_ascii_uppercase()))
    } else {
        None
    }
}

type W = Writer<Cursor<Vec<u8>>>;

fn display_inner(w: &mut W, text: &str) -> std::io::Result<()> {
    let mut d = BytesStart::new("Display");
    d.push_attribute(("lang", "en"));
    w.write_event(Event::Start(d))?;
    w.write_event(Event::CData(BytesCData::new(text.replace("]]>", "]] >"))))?;
    w.write_event(Event::End(BytesEnd::new("Display")))
}

fn display(w: &mut W, tag: &str, text: &str) -> std::io::Result<()> {
    w.write_event(Event::Start(BytesStart::new(tag)))?;
    display_inner(w, text)?;
    w.write_event(Event::End(BytesEnd::new(tag)))
}

fn valued(w: &mut W, tag: &str, value: &str, text: &str) -> std::io::Result<()> {
    let mut s = BytesStart::new(tag);
    s.push_attribute(("value", value));
    w.write_event(Event::Start(s))?;
    display_inner(w, text)?;
    w.write_event(Event::End(BytesEnd::new(tag)))
}

/// A `SoftwareComponent` as read by a simulated iDRAC.
#[derive(Debug, Clone, Default)]
pub struct CatalogComponent {
    /// `path` attribute.
    pub path: String,
    /// `vendorVersion` attribute.
    pub vendor_version: String,
    /// `rebootRequired` attribute.
    pub reboot_required: bool,
    /// `Criticality@value`.
    pub criticality: String,
    /// `Device@componentID` values.
    pub component_ids: Vec<String>,
    /// PCI identities `VVVV:DDDD:SSSS:SSSS` from `PCIInfo`.
    pub pci_ids: Vec<String>,
    /// Decimal SystemIDs from `Model@systemID`.
    pub system_ids: Vec<u32>,
}

/// A parsed catalog.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    /// `baseLocation`.
    pub base_location: Option<String>,
    /// `baseLocationAccessProtocols`.
    pub protocols: Option<String>,
    /// Software components.
    pub components: Vec<CatalogComponent>,
}

/// Decodes catalog bytes (UTF-16LE/BE with BOM, UTF-8 with or without BOM).
pub fn decode(bytes: &[u8]) -> String {
    let utf16 = |b: &[u8], le: bool| {
        let units: Vec<u16> = b
            .chunks_exact(2)
            .filter_map(|c| <[u8; 2]>::try_from(c).ok())
            .map(|c| {
                if le {
                    u16::from_le_bytes(c)
                } else {
                    u16::from_be_bytes(c)
                }
            })
            .collect();
        String::from_utf16_lossy(&units)
    };
    match bytes {
        [0xFF, 0xFE, rest @ ..] => utf16(rest, true),
        [0xFE, 0xFF, rest @ ..] => utf16(rest, false),
        [0xEF, 0xBB, 0xBF, rest @ ..] => String::from_utf8_lossy(rest).into_owned(),
        [b'<', 0, ..] => utf16(bytes, true),
        [0, b'<', ..] => utf16(bytes, false),
        _ => String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// Parses a Dell catalog.
pub fn parse(bytes: &[u8]) -> Result<Catalog, CatalogError> {
    let text = decode(bytes);
    let mut reader = quick_xml::Reader::from_str(&text);
    let mut cat = Catalog::default();
    let mut current: Option<CatalogComponent> = None;
    let mut seen_root = false;
    loop {
        let ev = reader
            .read_event()
            .map_err(|e| CatalogError::Parse(e.to_string()))?;
        match ev {
            Event::Start(ref s) | Event::Empty(ref s) => {
                let name = s.local_name();
                let attr = |k: &str| -> Option<String> {
                    s.attributes()
                        .flatten()
                        .find(|a| a.key.local_name().as_ref() == k.as_bytes())
                        .and_then(|a| a.unescape_value().ok().map(|v| v.into_owned()))
                };
                match name.as_ref() {
                    b"Manifest" => {
                        seen_root = true;
                        cat.base_location = attr("baseLocation");
                        cat.protocols = attr("baseLocationAccessProtocols");
                    }
                    b"SoftwareComponent" => {
                        let c = CatalogComponent {
                            path: attr("path").unwrap_or_default(),
                            vendor_version: attr("vendorVersion").unwrap_or_default(),
                            reboot_required: attr("rebootRequired")
                                .is_some_and(|v| v.eq_ignore_ascii_case("true")),
                            ..Default::default()
                        };
                        if matches!(ev, Event::Empty(_)) {
                            cat.components.push(c);
                        } else {
                            current = Some(c);
                        }
                    }
                    b"Device" => {
                        if let (Some(c), Some(id)) = (current.as_mut(), attr("componentID")) {
                            c.component_ids.push(id);
                        }
                    }
                    b"PCIInfo" => {
                        if let Some(c) = current.as_mut() {
                            let v = [
                                attr("vendorID"),
                                attr("deviceID"),
                                attr("subVendorID"),
                                attr("subDeviceID"),
                            ];
                            if v.iter().all(Option::is_some) {
                                let parts: Vec<String> = v
                                    .into_iter()
                                    .map(|x| x.unwrap_or_default().to_ascii_uppercase())
                                    .collect();
                                c.pci_ids.push(parts.join(":"));
                            }
                        }
                    }
                    b"Model" => {
                        if let (Some(c), Some(id)) = (current.as_mut(), attr("systemID"))
                            && let Ok(n) = u32::from_str_radix(id.trim(), 16)
                        {
                            c.system_ids.push(n);
                        }
                    }
                    b"Criticality" => {
                        if let (Some(c), Some(v)) = (current.as_mut(), attr("value")) {
                            c.criticality = v;
                        }
                    }
                    _ => {}
                }
            }
            Event::End(ref e) => {
                if e.local_name().as_ref() == b"SoftwareComponent"
                    && let Some(c) = current.take()
                {
                    cat.components.push(c);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !seen_root {
        return Err(CatalogError::Parse("no <Manifest> root".into()));
    }
    let _ = BytesText::new("");
    Ok(cat)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkg(cid: &str) -> Package {
        Package {
            system_ids: vec![1814, 2300],
            component_id: cid.into(),
            name: "BIOS".into(),
            version: "2.19.1".into(),
            reboot_required: true,
            kind: PackageKind::Bios,
        }
    }

    #[test]
    fn utf16_round_trip() {
        let p = pkg("159");
        let entries = vec![
            CatalogEntry::new(p.clone(), p.to_bytes()),
            CatalogEntry::new(pkg("15B3:101D:15B3:0016"), vec![1, 2, 3]),
        ];
        let bytes = write(&entries, &CatalogOptions::default()).unwrap();
        assert_eq!(&bytes[..2], &[0xFF, 0xFE]);
        assert!(decode(&bytes).starts_with("<?xml version=\"1.0\" encoding=\"utf-16\"?>"));
        let cat = parse(&bytes).unwrap();
        assert_eq!(cat.components.len(), 2);
        assert_eq!(cat.components[0].component_ids, vec!["159"]);
        assert_eq!(cat.components[0].system_ids, vec![1814, 2300]);
        assert_eq!(cat.components[0].vendor_version, "2.19.1");
        assert!(cat.components[0].reboot_required);
        assert_eq!(cat.components[1].pci_ids, vec!["15B3:101D:15B3:0016"]);
        let utf8 = write(
            &entries,
            &CatalogOptions {
                encoding: Encoding::Utf8,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(parse(&utf8).unwrap().components.len(), 2);
    }

    #[test]
    fn reads_dell_fixture_shape() {
        let xml = r#"<?xml version="1.0" encoding="utf-16"?><Manifest baseLocation="downloads.dell.com" baseLocationAccessProtocols="HTTPS"><SoftwareComponent path="F/1/x.EXE" vendorVersion="MA8F" rebootRequired="false"><SupportedDevices><Device componentID="103733" embedded="0"><Display lang="en"><![CDATA[x]]></Display></Device></SupportedDevices><SupportedSystems><Brand key="3" prefix="PE"><Model systemID="0627" systemIDType="BIOS"/></Brand></SupportedSystems></SoftwareComponent></Manifest>"#;
        let cat = parse(xml.as_bytes()).unwrap();
        assert_eq!(cat.base_location.as_deref(), Some("downloads.dell.com"));
        assert_eq!(cat.components[0].system_ids, vec![0x627]);
        assert!(parse(b"garbage").is_err());
    }
}
