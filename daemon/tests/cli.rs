//! The daemon's command line: `check-config` lists every problem with its
//! key path and exits 2; the OpenAPI document documents exactly the routes
//! the router serves.

use std::collections::BTreeSet;
use std::process::Command;
use utoipa::OpenApi as _;

fn firmflowd(args: &[&str]) -> (i32, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_firmflowd"))
        .args(args)
        .env_remove("FIRMFLOWD_CONFIG")
        .output()
        .expect("run firmflowd");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn check_config_lists_every_problem_with_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("firmflowd.toml");
    std::fs::write(
        &p,
        "[store]\nkind = \"postgres\"\npool_size = \"many\"\n\
         [executor]\nslots = 0\nlease_ttl_secs = 10\nheartbeat_secs = 9\nworkers = 3\n\
         [bmc.tls]\nca_file = \"missing.pem\"\n\
         [api]\nlisten = \"0.0.0.0:8080\"\n\
         [[api.tokens]]\nname = \"ci\"\nsha256 = \"not-hex\"\nrole = \"superuser\"\n",
    )
    .unwrap();
    let (code, out, err) = firmflowd(&["check-config", "--config", p.to_str().unwrap()]);
    assert_eq!(code, 2, "{out}{err}");
    for key in ["store.pool_size", "executor.workers", "api.tokens[0].role"] {
        assert!(
            err.contains(&format!("  {key}: ")),
            "{key} not listed:\n{err}"
        );
    }
    // Once the types are fixed, the semantic problems are all listed too.
    std::fs::write(
        &p,
        "[store]\nkind = \"postgres\"\n\
         [executor]\nslots = 0\nlease_ttl_secs = 10\nheartbeat_secs = 9\n\
         [bmc.tls]\nca_file = \"missing.pem\"\n\
         [api]\nlisten = \"0.0.0.0:8080\"\n\
         [[api.tokens]]\nname = \"ci\"\nsha256 = \"not-hex\"\nrole = \"viewer\"\n",
    )
    .unwrap();
    let (code, _, err) = firmflowd(&["check-config", "--config", p.to_str().unwrap()]);
    assert_eq!(code, 2);
    for key in [
        "store.url",
        "executor.slots",
        "executor.heartbeat_secs",
        "bmc.tls.ca_file",
        "api.tokens[0].sha256",
    ] {
        assert!(
            err.contains(&format!("  {key}: ")),
            "{key} not listed:\n{err}"
        );
    }
    assert!(err.contains("5 problem(s)"), "{err}");
}

#[test]
fn check_config_accepts_the_default_and_the_sample() {
    let (code, out, err) = firmflowd(&["check-config"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("embedded default: ok"), "{out}");
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/firmflowd.toml");
    let (code, out, err) = firmflowd(&["check-config", "--config", sample]);
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn openapi_documents_exactly_the_routes() {
    let doc = firmflowd::api::ApiDoc::openapi();
    let mut documented = BTreeSet::new();
    for (path, item) in &doc.paths.paths {
        let ops = [
            ("GET", item.get.is_some()),
            ("POST", item.post.is_some()),
            ("PUT", item.put.is_some()),
            ("DELETE", item.delete.is_some()),
            ("PATCH", item.patch.is_some()),
        ];
        for (m, present) in ops {
            if present {
                documented.insert((m.to_string(), path.clone()));
            }
        }
    }
    let routed: BTreeSet<(String, String)> = firmflowd::api::route_table()
        .into_iter()
        .map(|(m, p, _)| (m.to_string(), p.to_string()))
        .collect();
    let undocumented: Vec<_> = routed.difference(&documented).collect();
    let unrouted: Vec<_> = documented.difference(&routed).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from the document: {undocumented:?}"
    );
    assert!(
        unrouted.is_empty(),
        "documented but not routed: {unrouted:?}"
    );
    assert!(routed.len() >= 27);
}
