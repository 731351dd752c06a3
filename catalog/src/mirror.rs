//! Catalogs for a local mirror. iDRAC downloads packages from the
//! catalog's `baseLocation` + `baseLocationAccessProtocols`, not from the
//! share it read the catalog from: a mirrored catalog that still names
//! `downloads.dell.com` fails with `RED006` over HTTP or silently downloads
//! from Dell over HTTPS (fact sheet §2.1, quirk 6). [`rewrite_base_location`]
//! rewrites (or removes) both attributes and writes the catalog back as
//! UTF-8 with a BOM; everything else is copied event by event, unchanged.

use crate::error::{CatalogError, Position};
use crate::reader::decode_to_string;
use quick_xml::events::{BytesDecl, BytesStart, Event};

/// Rewrites the manifest's `baseLocation` and `baseLocationAccessProtocols`.
///
/// `base_location` is a host or host + path (`10.0.0.5/dell`); an empty one
/// removes the attribute, so packages are looked up next to the catalog.
/// `protocols` (`HTTP`, `HTTPS`, `CIFS`, …) replaces the protocol list;
/// `None` removes it. Input may be gzip-compressed and in any encoding the
/// reader accepts; the output is plain UTF-8 XML with a BOM.
pub fn rewrite_base_location(
    input: &[u8],
    name: &str,
    base_location: &str,
    protocols: Option<&str>,
) -> Result<Vec<u8>, CatalogError> {
    let text = decode_to_string(input, name)?;
    let mut reader = quick_xml::Reader::from_str(&text);
    reader.config_mut().check_end_names = true;
    let mut out = Vec::with_capacity(text.len() + 64);
    out.extend_from_slice(&[0xEF, 0xBB, 0xBF]);
    let mut writer = quick_xml::Writer::new(out);
    let mut depth = 0usize;
    let mut rewritten = false;
    let xml_err = |reader: &quick_xml::Reader<&[u8]>, message: String| CatalogError::Xml {
        file: name.to_string(),
        position: Position {
            line: None,
            column: None,
            offset: reader.error_position().max(reader.buffer_position()),
        },
        message,
    };
    loop {
        let ev = reader
            .read_event()
            .map_err(|e| xml_err(&reader, e.to_string()))?;
        let result = match ev {
            Event::Eof => break,
            Event::Decl(_) => {
                writer.write_event(Event::Decl(BytesDecl::new("1.0", Some("utf-8"), None)))
            }
            Event::Start(e)
                if depth == 0 && !rewritten && e.local_name().as_ref() == b"Manifest" =>
            {
                rewritten = true;
                depth += 1;
                let new = manifest_start(&e, base_location, protocols)
                    .map_err(|m| xml_err(&reader, m))?;
                writer.write_event(Event::Start(new))
            }
            Event::Empty(e)
                if depth == 0 && !rewritten && e.local_name().as_ref() == b"Manifest" =>
            {
                rewritten = true;
                let new = manifest_start(&e, base_location, protocols)
                    .map_err(|m| xml_err(&reader, m))?;
                writer.write_event(Event::Empty(new))
            }
            Event::Start(e) => {
                depth += 1;
                writer.write_event(Event::Start(e))
            }
            Event::End(e) => {
                depth = depth.saturating_sub(1);
                writer.write_event(Event::End(e))
            }
            other => writer.write_event(other),
        };
        result.map_err(|e| CatalogError::Io {
            file: name.to_string(),
            message: e.to_string(),
        })?;
    }
    if !rewritten {
        return Err(CatalogError::Structure {
            file: name.to_string(),
            position: Position::default(),
            message: "no <Manifest> root element to rewrite".into(),
        });
    }
    Ok(writer.into_inner())
}

fn manifest_start(
    e: &BytesStart<'_>,
    base: &str,
    protocols: Option<&str>,
) -> Result<BytesStart<'static>, String> {
    let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
    let mut new = BytesStart::new(name);
    for a in e.attributes().with_checks(true) {
        let a = a.map_err(|err| err.to_string())?;
        let key = a.key.local_name();
        if key.as_ref() == b"baseLocation" || key.as_ref() == b"baseLocationAccessProtocols" {
            continue;
        }
        new.push_attribute(a);
    }
    if !base.trim().is_empty() {
        new.push_attribute(("baseLocation", base.trim()));
    }
    if let Some(p) = protocols.map(str::trim).filter(|p| !p.is_empty()) {
        new.push_attribute(("baseLocationAccessProtocols", p));
    }
    Ok(new.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::locator::{PackageLocation, PackageLocator};
    use crate::reader::read_catalog_bytes;
    use crate::testutil::{F11G, F25, f11g, f25};

    #[test]
    fn rewrites_the_utf16_online_catalog_for_a_mirror() {
        let input = std::fs::read(F25).expect("fixture");
        let out = rewrite_base_location(&input, "Catalog.xml", "10.0.0.5/dell", Some("HTTP"))
            .expect("rewrite");
        assert!(out.starts_with(&[0xEF, 0xBB, 0xBF]));
        let c = read_catalog_bytes(&out, "mirror.xml").expect("parse");
        assert_eq!(c.encoding, "UTF-8");
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        assert_eq!(c.manifest.base_location.as_deref(), Some("10.0.0.5/dell"));
        assert_eq!(
            c.manifest.base_location_access_protocols,
            vec!["HTTP".to_string()]
        );
        // Everything else is unchanged.
        let orig = f25();
        assert_eq!(c.components, orig.components);
        assert_eq!(c.inventory_components, orig.inventory_components);
        assert_eq!(c.manifest.identifier, orig.manifest.identifier);
        assert_eq!(c.manifest.version, orig.manifest.version);
        let loc = PackageLocator::new("http://10.0.0.5/dell/Catalog.xml");
        assert_eq!(
            loc.locate(&c, &c.components[2]),
            PackageLocation::Url(
                "http://10.0.0.5/dell/FOLDER11615172M/1/Express-Flash-PCIe-SSD_Firmware_5JJFF_WN64_2.0.0_A00.EXE".into()
            )
        );
    }

    #[test]
    fn removing_both_attributes_makes_packages_relative() {
        let input = std::fs::read(F25).expect("fixture");
        let out = rewrite_base_location(&input, "Catalog.xml", "", None).expect("rewrite");
        let c = read_catalog_bytes(&out, "mirror.xml").expect("parse");
        assert_eq!(c.manifest.base_location, None);
        assert!(c.manifest.base_location_access_protocols.is_empty());
        let loc = PackageLocator::new("https://share.example/repo/Catalog.xml");
        assert_eq!(
            loc.locate(&c, &c.components[0]),
            PackageLocation::Url(
                "https://share.example/repo/FOLDER04177723M/1/Serial-ATA_Firmware_H09VC_LN_MA8F_A00.BIN".into()
            )
        );
    }

    #[test]
    fn keeps_a_large_custom_catalog_intact_and_reports_bad_input() {
        let input = std::fs::read(F11G).expect("fixture");
        let out =
            rewrite_base_location(&input, "c.xml", "mirror.corp", Some("HTTPS")).expect("rewrite");
        let c = read_catalog_bytes(&out, "c.xml").expect("parse");
        assert_eq!(c.components, f11g().components);
        assert_eq!(c.bundles, f11g().bundles);
        let err = rewrite_base_location(b"<Manifest><a></b></Manifest>", "bad.xml", "x", None)
            .expect_err("bad");
        assert!(err.to_string().contains("bad.xml"), "{err}");
        let err = rewrite_base_location(b"<Other/>", "other.xml", "x", None).expect_err("root");
        assert!(matches!(err, CatalogError::Structure { .. }));
        let ok = rewrite_base_location(b"<Manifest baseLocation=\"a\"/>", "e.xml", "b", None)
            .expect("empty root");
        let c = read_catalog_bytes(&ok, "e.xml").expect("parse");
        assert_eq!(c.manifest.base_location.as_deref(), Some("b"));
    }
}
