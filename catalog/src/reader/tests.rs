//! Reader tests on the real fixture catalogs and on bad inputs derived from
//! them in memory.

use super::*;
use flate2::Compression;
use flate2::write::GzEncoder;
use std::io::Write;

const F11G: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/dell-custom-catalog-11g-2017.xml"
);
const F25: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/dell-catalog-2025-04-excerpt.utf16le.xml"
);
const FPL: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/idrac-getrepobasedupdatelist-packagelist.xml"
);

fn bytes(p: &str) -> Vec<u8> {
    std::fs::read(p).expect("fixture present")
}

/// The F25 excerpt as a UTF-8 string (decoded from its UTF-16LE bytes).
fn f25_text() -> String {
    let b = bytes(F25);
    let (text, _, bad) = UTF_16LE.decode(&b);
    assert!(!bad);
    text.trim_start_matches('\u{feff}').to_string()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(data).expect("gzip");
    enc.finish().expect("gzip")
}

fn utf16(text: &str, be: bool, bom: bool) -> Vec<u8> {
    let mut out = Vec::new();
    if bom {
        out.extend_from_slice(if be { &[0xFE, 0xFF] } else { &[0xFF, 0xFE] });
    }
    for u in text.encode_utf16() {
        out.extend_from_slice(&if be { u.to_be_bytes() } else { u.to_le_bytes() });
    }
    out
}

#[test]
fn reads_the_11g_custom_catalog() {
    let c = read_catalog_file(F11G).expect("parse");
    assert_eq!(c.encoding, "UTF-8");
    assert!(!c.gzip);
    assert_eq!(c.components.len(), 352);
    assert_eq!(c.bundles.len(), 3);
    assert_eq!(c.manifest.base_location.as_deref(), Some(""));
    assert!(c.manifest.base_location_access_protocols.is_empty());
    assert_eq!(c.manifest.version, None);
    assert_eq!(
        c.manifest.date_time.map(|d| d.to_rfc3339()),
        Some("2017-12-01T09:34:48+00:00".into())
    );
    // SOURCES.md: one component lacks rebootRequired, one is a GZ package.
    assert_eq!(
        c.components
            .iter()
            .filter(|x| x.reboot_required.is_none())
            .count(),
        1
    );
    assert_eq!(
        c.components
            .iter()
            .filter(|x| x.package_type == Some(PackageType::Gz))
            .count(),
        1
    );
    // Every component has an MD5 and a criticality; no size in this catalog.
    assert!(c.components.iter().all(|x| x.hashes.md5.is_some()));
    assert!(c.components.iter().all(|x| x.criticality.is_some()));
    assert!(c.components.iter().all(|x| x.size.is_none()));
    // Bundles: TargetSystems and basename package refs.
    let r710 = &c.bundles[0];
    assert_eq!(r710.bundle_id.as_deref(), Some("PH29950_LIN.650"));
    assert_eq!(r710.target_systems[0].models[0].system_id, "0235");
    assert_eq!(
        r710.target_systems[0].models[0].display.as_deref(),
        Some("R710")
    );
    assert_eq!(r710.target_oses[0].os_code.as_deref(), Some("LIN"));
    assert!(
        r710.packages
            .iter()
            .any(|p| p == "R710_BIOS_4HKX2_LN_6.4.0.BIN")
    );
    assert_eq!(c.bundles_for_system(0x0235).count(), 1);
    // 117 of the 537 refs point at dropped components (SOURCES.md).
    let total: usize = c.bundles.iter().map(|b| b.packages.len()).sum();
    assert_eq!(total, 537);
    assert_eq!(c.dangling_bundle_refs().len(), 117);
    // CRLF display text comes out without carriage returns.
    assert!(
        c.components
            .iter()
            .filter_map(|x| x.name.as_deref())
            .all(|n| !n.contains('\r'))
    );
    let bios = c
        .component_by_basename("R710_BIOS_4HKX2_LN_6.4.0.BIN")
        .expect("R710 BIOS");
    assert_eq!(bios.vendor_version, "6.4.0");
    assert_eq!(bios.kind(), firmflow_core::model::ComponentKind::Bios);
    assert!(bios.supports_system(0x0235));
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn reads_the_2025_utf16le_excerpt_with_every_attribute() {
    let c = read_catalog_file(F25).expect("parse");
    assert_eq!(c.encoding, "UTF-16LE");
    let m = &c.manifest;
    assert_eq!(m.base_location.as_deref(), Some("downloads.dell.com"));
    assert_eq!(m.base_location_access_protocols, vec!["HTTPS".to_string()]);
    assert_eq!(m.version.as_deref(), Some("25.04.28"));
    assert_eq!(m.release_id.as_deref(), Some("RHDC6"));
    assert_eq!(
        m.identifier.as_deref(),
        Some("48912fae-2b46-4b4c-bafe-2c709c7b0ad2")
    );
    assert_eq!(
        m.predecessor_id.as_deref(),
        Some("02c9dbe4-de0f-495c-8e1d-8b804b0894e6")
    );
    assert_eq!(m.release_notes.as_deref(), Some("Release Notes"));
    assert_eq!(c.inventory_components.len(), 2);
    let inv = &c.inventory_components[1];
    assert_eq!(inv.os_code.as_deref(), Some("WIN64"));
    assert_eq!(inv.vendor_version.as_deref(), Some("25.03.00"));
    // `Z` offsets.
    assert_eq!(
        inv.date_time.map(|d| d.to_rfc3339()),
        Some("2025-03-13T04:09:54+00:00".into())
    );
    assert_eq!(inv.release_date, NaiveDate::from_ymd_opt(2025, 3, 13));

    assert_eq!(c.components.len(), 3);
    let sata = &c.components[0];
    assert_eq!(sata.vendor_version, "MA8F");
    assert_eq!(sata.dell_version.as_deref(), Some("A00"));
    assert_eq!(sata.package_type, Some(PackageType::Llxp));
    assert_eq!(sata.size, Some(40_821_221));
    assert_eq!(sata.reboot_required, Some(false));
    assert_eq!(sata.schema_version.as_deref(), Some("2.4"));
    assert_eq!(sata.release_date, NaiveDate::from_ymd_opt(2017, 3, 24));
    assert_eq!(
        sata.lu_category.as_ref().map(|x| x.value.as_str()),
        Some("Serial ATA")
    );
    assert_eq!(sata.category.as_ref().map(|x| x.value.as_str()), Some("SA"));
    assert_eq!(sata.criticality, Some(Criticality::Recommended));
    assert_eq!(sata.devices[0].component_id.as_deref(), Some("103733"));
    assert_eq!(sata.devices[0].embedded, Some(false));
    assert_eq!(sata.systems[0].models.len(), 8);
    assert_eq!(
        sata.systems[0].models[0].system_id_type.as_deref(),
        Some("BIOS")
    );
    assert!(sata.supports_system(0x0627));
    assert_eq!(
        sata.important_info_url.as_deref(),
        Some("https://www.dell.com/support/home/en-us/drivers/DriversDetails?driverId=H09VC")
    );
    assert_eq!(sata.kind(), firmflow_core::model::ComponentKind::Drive);

    let ism = &c.components[1];
    assert_eq!(
        ism.systems[0].display.as_deref(),
        Some("Enterprise Servers")
    );
    let dev = &ism.devices[0];
    assert_eq!(dev.embedded, Some(true));
    let rb = dev.rollback.as_ref().expect("rollback info");
    assert_eq!(rb.rollback_timeout, Some(1200));
    assert_eq!(rb.impacts_tpm_measurements, Some(true));
    assert_eq!(rb.rollback_volume.as_deref(), Some("MAS028"));
    assert_eq!(dev.payload_images.len(), 7);
    assert_eq!(dev.payload_images[5].version.as_deref(), Some(""));
    assert_eq!(dev.payload_images[0].skip, Some(false));
    let w = &ism.fmp_wrappers[0];
    assert_eq!(w.name.as_deref(), Some("LC-ISM"));
    assert_eq!(w.digital_signature, Some(false));
    assert_eq!(w.inventory_source.as_deref(), Some("LCL"));
    assert_eq!(w.update_rollback, Some(false));
    assert_eq!(w.update_supported, Some(true));

    let nvme = &c.components[2];
    assert_eq!(nvme.package_type, Some(PackageType::Lw64));
    assert_eq!(nvme.format(), PackageFormat::WindowsDup);
    assert_eq!(nvme.devices.len(), 9);
    let pci = &nvme.devices[0].pci[0];
    assert_eq!(pci.vendor_id.as_deref(), Some("1E0F"));
    assert_eq!(pci.sub_device_id.as_deref(), Some("223E"));
    assert_eq!(
        nvme.devices[0]
            .rollback
            .as_ref()
            .and_then(|r| r.alternate_rollback_identifier.as_deref()),
        Some("112162")
    );
    assert_eq!(
        nvme.hashes.best().as_deref(),
        Some("md5:83ad12b7eab4c50099dccffdb1066829")
    );
    assert_eq!(
        nvme.date_time.map(|d| d.to_rfc3339()),
        Some("2024-05-27T08:45:23+05:30".into())
    );
}

#[test]
fn every_encoding_reads_the_same() {
    let text = f25_text();
    let reference = read_catalog_file(F25).expect("parse");
    let variants: Vec<(&str, Vec<u8>, &str)> = vec![
        ("utf16be-bom", utf16(&text, true, true), "UTF-16BE"),
        ("utf16le-nobom", utf16(&text, false, false), "UTF-16LE"),
        ("utf8-nobom", text.clone().into_bytes(), "UTF-8"),
        (
            "utf8-bom",
            [&[0xEF, 0xBB, 0xBF][..], text.as_bytes()].concat(),
            "UTF-8",
        ),
        ("gz-utf16le", gzip(&bytes(F25)), "UTF-16LE"),
    ];
    for (name, data, enc) in variants {
        let c = read_catalog_bytes(&data, name).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(c.encoding, enc, "{name}");
        assert_eq!(c.components, reference.components, "{name}");
        assert_eq!(c.manifest, reference.manifest, "{name}");
    }
    // The 8-bit copy still declares utf-16: read as UTF-8 with a warning.
    let c = read_catalog_bytes(text.as_bytes(), "utf8").expect("parse");
    assert!(
        c.warnings.iter().any(|w| w.contains("8-bit")),
        "{:?}",
        c.warnings
    );
}

#[test]
fn reads_gzip_and_reports_truncation_with_offset() {
    let raw = bytes(F11G);
    let gz = gzip(&raw);
    let c = read_catalog_bytes(&gz, "Catalog.xml.gz").expect("gz parse");
    assert!(c.gzip);
    assert_eq!(c.components.len(), 352);

    let cut = &gz[..gz.len() / 2];
    let err = read_catalog_bytes(cut, "Catalog.xml.gz").expect_err("truncated");
    match &err {
        CatalogError::Gzip {
            file,
            position,
            message,
        } => {
            assert_eq!(file, "Catalog.xml.gz");
            assert!(position.offset > 0 && position.offset <= cut.len() as u64);
            assert!(message.contains("truncated"), "{message}");
        }
        other => panic!("expected gzip error, got {other:?}"),
    }
    // The trailer alone missing is also a truncation.
    let err = read_catalog_bytes(&gz[..gz.len() - 4], "c.gz").expect_err("no trailer");
    assert!(matches!(err, CatalogError::Gzip { .. }), "{err}");
    // Garbage after a gzip header.
    let mut bad = gz[..10].to_vec();
    bad.extend_from_slice(&[0xFF; 64]);
    let err = read_catalog_bytes(&bad, "c.gz").expect_err("corrupt");
    assert!(matches!(err, CatalogError::Gzip { .. }), "{err}");
}

#[test]
fn cab_is_refused_with_a_hint() {
    let err = read_catalog_bytes(b"MSCF\0\0\0\0rest", "download").expect_err("cab");
    assert!(matches!(err, CatalogError::CabNotSupported { .. }));
    assert!(err.to_string().contains("use Catalog.xml.gz"), "{err}");
    let err = read_catalog_file("/nonexistent/Catalog.cab").expect_err("cab name");
    assert!(matches!(err, CatalogError::CabNotSupported { .. }));
    let err = read_catalog_file("/nonexistent/Catalog.xml").expect_err("missing");
    assert!(matches!(err, CatalogError::Io { .. }));
    assert!(err.to_string().contains("/nonexistent/Catalog.xml"));
}

#[test]
fn corrupt_xml_names_file_line_and_column() {
    let text = String::from_utf8(bytes(F11G)).expect("utf8");
    // Break the end tag of the first component's Name display.
    let at = text.find("</Display>").expect("display");
    let mut broken = text.clone();
    broken.replace_range(at..at + "</Display>".len(), "</Dispaly>");
    let err = read_catalog_bytes(broken.as_bytes(), "broken.xml").expect_err("bad");
    let line_of = text[..at].matches('\n').count() as u64 + 1;
    match &err {
        CatalogError::Xml {
            file,
            position,
            message,
        } => {
            assert_eq!(file, "broken.xml");
            assert_eq!(position.line, Some(line_of), "{message}");
            assert!(position.column.is_some());
        }
        other => panic!("expected xml error, got {other:?}"),
    }
    assert!(
        err.to_string().contains(&format!("line {line_of}")),
        "{err}"
    );

    // Truncated in the middle of the document.
    let cut = &text.as_bytes()[..text.len() / 3];
    let err = read_catalog_bytes(cut, "cut.xml").expect_err("truncated");
    assert!(matches!(&err, CatalogError::Xml { .. }), "{err}");
    assert!(err.to_string().contains("cut.xml"), "{err}");

    // An unquoted attribute.
    let err =
        read_catalog_bytes(b"<Manifest baseLocation=x></Manifest>", "attr.xml").expect_err("attr");
    assert!(matches!(err, CatalogError::Xml { .. }), "{err}");
}

#[test]
fn wrong_encoding_is_an_error_with_offset() {
    // Latin-1 é inside a UTF-8 document.
    let mut doc =
        b"<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<Manifest><ReleaseNotes><Display>caf"
            .to_vec();
    let bad_at = doc.len() as u64;
    doc.push(0xE9);
    doc.extend_from_slice(b"</Display></ReleaseNotes></Manifest>");
    let err = read_catalog_bytes(&doc, "latin.xml").expect_err("bad utf8");
    match &err {
        CatalogError::Encoding {
            encoding, position, ..
        } => {
            assert_eq!(encoding, "UTF-8");
            assert_eq!(position.offset, bad_at);
        }
        other => panic!("expected encoding error, got {other:?}"),
    }
    // UTF-16 cut at an odd byte.
    let mut b = bytes(F25);
    b.truncate(1001);
    let err = read_catalog_bytes(&b, "odd.xml").expect_err("odd");
    assert!(matches!(err, CatalogError::Encoding { .. }), "{err}");
    // A lone surrogate in UTF-16LE.
    let mut b = utf16("<Manifest><ReleaseNotes><Display>x", false, true);
    b.extend_from_slice(&0xD800u16.to_le_bytes());
    b.extend_from_slice(&utf16(
        "y</Display></ReleaseNotes></Manifest>",
        false,
        false,
    ));
    let err = read_catalog_bytes(&b, "surrogate.xml").expect_err("surrogate");
    assert!(matches!(err, CatalogError::Encoding { .. }), "{err}");
    // A declared 8-bit encoding is honoured.
    let mut doc =
        b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><Manifest><ReleaseNotes><Display>caf"
            .to_vec();
    doc.push(0xE9);
    doc.extend_from_slice(b"</Display></ReleaseNotes></Manifest>");
    let c = read_catalog_bytes(&doc, "latin1.xml").expect("latin1");
    assert_eq!(c.manifest.release_notes.as_deref(), Some("café"));
}

#[test]
fn namespaces_and_prefixes_are_ignored() {
    let text = f25_text().replacen("<Manifest ", "<Manifest xmlns=\"openmanage/cm/dm\" ", 1);
    let c = read_catalog_bytes(text.as_bytes(), "ns.xml").expect("ns");
    let reference = read_catalog_file(F25).expect("parse");
    assert_eq!(c.components, reference.components);

    let prefixed = "<dm:Manifest xmlns:dm=\"openmanage/cm/dm\" baseLocation=\"\">\
        <dm:SoftwareComponent path=\"a/B.EXE\" vendorVersion=\"1.2\" packageType=\"LW64\">\
        <dm:SupportedSystems><dm:Brand key=\"3\"><dm:Model systemID=\"0a6b\"/></dm:Brand></dm:SupportedSystems>\
        </dm:SoftwareComponent></dm:Manifest>";
    let c = read_catalog_bytes(prefixed.as_bytes(), "prefixed.xml").expect("prefixed");
    assert_eq!(c.components.len(), 1);
    assert_eq!(c.components[0].systems[0].models[0].system_id, "0A6B");
    assert!(c.components[0].supports_system(0x0A6B));
}

#[test]
fn not_a_catalog_is_a_structure_error() {
    let err = read_catalog_file(FPL).expect_err("packagelist");
    assert!(matches!(err, CatalogError::Structure { .. }), "{err}");
    assert!(err.to_string().contains("PackageList"), "{err}");
    let err = read_catalog_bytes(b"", "empty.xml").expect_err("empty");
    assert!(matches!(err, CatalogError::Structure { .. }), "{err}");
    let err = read_catalog_bytes(b"   \n", "blank.xml").expect_err("blank");
    assert!(matches!(err, CatalogError::Structure { .. }), "{err}");
    let err = read_catalog_bytes(b"<Manifest/><Manifest/>", "two.xml").expect_err("two roots");
    assert!(matches!(err, CatalogError::Structure { .. }), "{err}");
}

#[test]
fn missing_optional_attributes_and_client_hashes() {
    let doc = r#"<?xml version="1.0"?>
<Manifest>
  <SoftwareComponent path="x/NIC_WN64_1.0.EXE" vendorVersion="1.0" releaseDate="July 25,2023" dateTime="2023-07-25T10:00:00">
    <Cryptography>
      <Hash algorithm="SHA256">ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789</Hash>
      <Hash algorithm="MD5">00112233445566778899aabbccddeeff</Hash>
    </Cryptography>
    <SupportedDevices><Device componentID="" embedded="false"><PCIInfo vendorID="8086" deviceID="1572"/></Device></SupportedDevices>
    <Name><Display lang="de">Netzwerk</Display><Display lang="en">Network &amp; more &#x263A;</Display></Name>
  </SoftwareComponent>
  <SoftwareComponent vendorVersion="2.0"/>
  <SoftwareComponent path="y.EXE" rebootRequired="maybe" vendorVersion="3"/>
</Manifest>"#;
    let c = read_catalog_bytes(doc.as_bytes(), "client.xml").expect("parse");
    assert_eq!(c.components.len(), 2, "the entry without path is skipped");
    let x = &c.components[0];
    assert_eq!(x.release_date, NaiveDate::from_ymd_opt(2023, 7, 25));
    assert_eq!(
        x.date_time.map(|d| d.to_rfc3339()),
        Some("2023-07-25T10:00:00+00:00".into())
    );
    assert_eq!(x.size, None);
    assert_eq!(x.reboot_required, None);
    assert_eq!(
        x.hashes.best().as_deref(),
        Some("sha256:abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789")
    );
    assert_eq!(x.devices[0].component_id, None);
    assert_eq!(x.devices[0].embedded, Some(false));
    assert_eq!(x.devices[0].pci[0].device_id.as_deref(), Some("1572"));
    assert_eq!(x.name.as_deref(), Some("Network & more \u{263A}"));
    assert_eq!(c.components[1].reboot_required, None);
    assert!(
        c.warnings.iter().any(|w| w.contains("rebootRequired")),
        "{:?}",
        c.warnings
    );
    assert!(
        c.warnings.iter().any(|w| w.contains("skipped")),
        "{:?}",
        c.warnings
    );
}

#[test]
fn values() {
    assert_eq!(
        parse_release_date("May 27, 2024"),
        NaiveDate::from_ymd_opt(2024, 5, 27)
    );
    assert_eq!(
        parse_release_date("July 25,2023"),
        NaiveDate::from_ymd_opt(2023, 7, 25)
    );
    assert_eq!(
        parse_release_date("Mar 3, 2017"),
        NaiveDate::from_ymd_opt(2017, 3, 3)
    );
    assert_eq!(parse_release_date("soon"), None);
    assert!(parse_date_time("2024-10-15T05:03:16-05:00").is_some());
    assert!(parse_date_time("2025-03-13T04:09:54Z").is_some());
    assert!(parse_date_time("yesterday").is_none());
    assert_eq!(normalize_hex_id(" 0x1e0f "), Some("1E0F".into()));
    assert_eq!(normalize_hex_id(""), None);
    assert_eq!(parse_bool("TRUE"), Some(true));
    assert_eq!(parse_bool("0"), Some(false));
    assert!(is_cab_name("https://ftp.dell.com/catalog/Catalog.CAB?x=1"));
    assert!(!is_cab_name("Catalog.xml.gz"));
}
