//! Fuzz target: any bytes through the catalog reader (gzip, encodings,
//! XML), the matching index, the mirror rewrite and version comparison.
//! Properties: nothing panics; a catalog that reads also rewrites, and the
//! rewritten catalog reads back to the same components and bundles.

#![no_main]

use firmflow_catalog::{CatalogIndex, compare_versions, read_catalog_bytes, rewrite_base_location};
use libfuzzer_sys::fuzz_target;
use std::sync::Arc;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data)
        && let Some((a, b)) = s.split_once('\n')
    {
        let _ = compare_versions(a, b);
    }
    let Ok(catalog) = read_catalog_bytes(data, "fuzz.xml") else {
        return;
    };
    let rewritten =
        match rewrite_base_location(data, "fuzz.xml", "mirror.example/dell", Some("HTTP")) {
            Ok(r) => r,
            Err(e) => panic!("read but cannot be rewritten: {e}"),
        };
    match read_catalog_bytes(&rewritten, "rewritten.xml") {
        Ok(back) => {
            assert_eq!(
                back.components, catalog.components,
                "components changed by the rewrite"
            );
            assert_eq!(
                back.bundles, catalog.bundles,
                "bundles changed by the rewrite"
            );
        }
        Err(e) => panic!("rewritten catalog does not read: {e}"),
    }
    let catalog = Arc::new(catalog);
    let index = CatalogIndex::new(catalog.clone());
    for sid in catalog.systems().keys() {
        let _ = index.has_system(*sid);
    }
});
