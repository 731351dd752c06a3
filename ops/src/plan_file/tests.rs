//! Plan file parsing, target matching and line-numbered problems.

use super::*;
use firmflow_core::model::NewHost;

fn fleet() -> Vec<Host> {
    let now = Utc::now();
    let mut v = Vec::new();
    for i in 1..=6 {
        let c = if i <= 3 { "domain-c7" } else { "domain-c8" };
        let mut nh = NewHost::idrac(format!("esx0{i}.lab"), format!("10.0.0.{i}")).in_cluster(
            "https://vc.lab",
            c,
            format!("host-{i}"),
        );
        nh.tags = if i % 2 == 0 {
            vec!["even".into()]
        } else {
            vec!["odd".into()]
        };
        nh.datacenter_id = Some(datacenter_id(if i <= 4 { "dc1" } else { "dc2" }));
        v.push(nh.into_host(now));
    }
    v
}

fn toml_plan(text: &str) -> Result<PlanFile, PlanFileError> {
    parse(text, PlanFormat::Toml, "plan.toml", None)
}

fn lines_of(e: &PlanFileError) -> Vec<(Option<usize>, String)> {
    e.problems()
        .iter()
        .map(|p| (p.line, p.field.clone()))
        .collect()
}

const GOOD: &str = r#"
name = "rolling BIOS"
catalog = "https://downloads.dell.com/catalog/Catalog.xml.gz"

[targets]
clusters = ["domain-c7", "domain-c8"]
tags = ["odd"]
exclude = ["esx05.lab"]
priority = { "esx03.lab" = 10 }

[window]
start = 2025-01-18T22:00:00Z
end = 2025-01-19T06:00:00Z

[policy]
maxConcurrent = 2
minHostsOnline = 1
rollbackOnFailure = true
preflightChecks = ["connectivity", "cluster_health"]
retry = { maxAttempts = 2, initialBackoffSecs = 1 }
"#;

#[test]
fn a_good_plan_resolves_its_targets() {
    let pf = toml_plan(GOOD).unwrap();
    assert_eq!(pf.policy.update_mode, UpdateMode::LatestFromCatalog);
    assert!(pf.approval_required, "plan files need approval by default");
    let hosts = fleet();
    let plan = pf.check(&hosts, &[]).unwrap();
    let names: Vec<&str> = plan
        .targets
        .iter()
        .map(|t| {
            hosts
                .iter()
                .find(|h| h.id == t.host_id)
                .unwrap()
                .fqdn
                .as_str()
        })
        .collect();
    // odd hosts of both clusters, minus esx05.
    assert_eq!(names, ["esx01.lab", "esx03.lab"]);
    assert_eq!(plan.targets[1].priority, 10);
    assert_eq!(plan.policy.max_concurrent, 2);
    assert_eq!(plan.policy.retry.as_ref().unwrap().max_attempts, 2);
    assert!(plan.maintenance_window.is_some());
    // The same text gives the same key; an edit gives another.
    let key = plan.idempotency_key.clone().unwrap();
    assert!(key.starts_with("plan-file:rolling BIOS:"), "{key}");
    assert_eq!(toml_plan(GOOD).unwrap().idempotency_key(), key);
    let edited = GOOD.replace("maxConcurrent = 2", "maxConcurrent = 1");
    assert_ne!(toml_plan(&edited).unwrap().idempotency_key(), key);
}

#[test]
fn json_plans_read_the_same() {
    let text = r#"{
  "name": "pkg",
  "targets": {"hosts": ["esx01.lab", "10.0.0.2"]},
  "packages": [
    {"component": "159", "image_uri": "https://repo.lab/BIOS.EXE", "version": "2.19.1"}
  ],
  "policy": {"maxConcurrent": 1, "allowDowntime": true, "requireMaintenanceMode": false},
  "approval_required": false
}"#;
    let pf = parse(text, PlanFormat::Json, "plan.json", None).unwrap();
    assert_eq!(pf.policy.update_mode, UpdateMode::SpecificPackage);
    assert!(!pf.approval_required);
    let plan = pf.check(&fleet(), &[]).unwrap();
    assert_eq!(plan.targets.len(), 2);
    assert_eq!(plan.artifacts[0].version.as_deref(), Some("2.19.1"));
}

#[test]
fn structural_problems_name_their_lines() {
    let text = r#"name = 7
colour = "red"

[targets]
tags = ["odd", 3]
racks = ["r1"]

[policy]
maxConcurrent = "two"
"#;
    let e = toml_plan(text).unwrap_err();
    let got = lines_of(&e);
    assert!(got.contains(&(Some(1), "name".into())), "{got:?}");
    assert!(got.contains(&(Some(2), "colour".into())), "{got:?}");
    assert!(
        got.contains(&(Some(5), "targets.tags[1]".into())),
        "{got:?}"
    );
    assert!(got.contains(&(Some(6), "targets.racks".into())), "{got:?}");
    let shown = e.to_string();
    assert!(shown.starts_with("plan.toml: "), "{shown}");
    assert!(
        shown.contains("plan.toml:2: colour: unknown field"),
        "{shown}"
    );
}

#[test]
fn policy_type_errors_name_the_key_line() {
    let text = "name = \"x\"\ncatalog = \"https://c/Catalog.xml\"\n[targets]\nall = true\n[policy]\nmaxConcurrent = \"two\"\n";
    let e = toml_plan(text).unwrap_err();
    let p = &e.problems()[0];
    assert_eq!(p.line, Some(6), "{e}");
    assert_eq!(p.field, "policy.maxConcurrent");
    assert!(p.message.contains("invalid type"), "{}", p.message);
}

#[test]
fn validation_problems_carry_lines_too() {
    let text = r#"name = "v"
mode = "LATEST_FROM_CATALOG"

[targets]
hosts = ["esx01.lab", "esx99.lab"]
clusters = ["domain-c7"]
priority = { "esx06.lab" = 5 }

[policy]
maxConcurrent = 0
minHostsOnline = 3
max_resumes = 2
preflightChecks = ["connectivity", "telepathy"]
"#;
    let pf = toml_plan(text).unwrap();
    let e = pf.check(&fleet(), &[]).unwrap_err();
    let got = lines_of(&e);
    for want in [
        (Some(2), "policy.catalogUrl"),
        (Some(5), "targets.hosts[1]"),
        (Some(7), "targets.priority.esx06.lab"),
        (Some(10), "policy.maxConcurrent"),
        (Some(11), "policy.minHostsOnline"),
        (Some(12), "policy.max_resumes"),
        (Some(13), "policy.preflightChecks[1]"),
    ] {
        assert!(
            got.contains(&(want.0, want.1.to_string())),
            "{want:?} missing from {got:?}"
        );
    }
    assert!(e.to_string().contains("did you mean maxResumes?"), "{e}");
    // A custom check name is fine once registered.
    let text2 = text
        .replace("maxConcurrent = 0", "maxConcurrent = 1")
        .replace("minHostsOnline = 3", "minHostsOnline = 1")
        .replace("max_resumes = 2\n", "")
        .replace(", \"esx99.lab\"", "")
        .replace("priority = { \"esx06.lab\" = 5 }\n", "")
        .replace(
            "mode = \"LATEST_FROM_CATALOG\"",
            "catalog = \"https://c/Catalog.xml\"",
        );
    let pf = toml_plan(&text2).unwrap();
    assert!(pf.check(&fleet(), &[]).is_err());
    assert!(pf.check(&fleet(), &["telepathy".into()]).is_ok());
}

#[test]
fn selectors_that_match_nothing_are_errors() {
    let text = "name = \"n\"\ncatalog = \"https://c/Catalog.xml\"\n[targets]\ntags = [\"even\"]\nclusters = [\"domain-c7\"]\ndatacenters = [\"dc2\"]\n";
    // even ∧ c7 ∧ dc2 is empty although each selector matches something.
    let e = toml_plan(text).unwrap().check(&fleet(), &[]).unwrap_err();
    assert_eq!(lines_of(&e), [(Some(3), "targets".to_string())], "{e}");
    let e = toml_plan("name = \"n\"\ncatalog = \"c\"\n[targets]\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("selects no host"), "{e}");
    let e = toml_plan("name = \"n\"\n[targets]\nall = true\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("mode: missing"), "{e}");
}

#[test]
fn syntax_errors_name_the_line() {
    let e = toml_plan("name = \"x\"\n[targets\n").unwrap_err();
    assert_eq!(e.problems()[0].line, Some(2), "{e}");
    let e = parse("{\n\"name\": \"x\",\n}", PlanFormat::Json, "p.json", None).unwrap_err();
    assert_eq!(e.problems()[0].line, Some(3), "{e}");
}

#[test]
fn multipart_paths_are_relative_to_the_file() {
    let text = "name = \"m\"\nmode = \"MULTIPART_FILE\"\n[targets]\nall = true\n[[packages]]\ncomponent = \"159\"\nimage_uri = \"pkgs/BIOS.EXE\"\n";
    let pf = parse(
        text,
        PlanFormat::Toml,
        "p.toml",
        Some(Path::new("/srv/plans")),
    )
    .unwrap();
    assert_eq!(pf.artifacts[0].image_uri, "/srv/plans/pkgs/BIOS.EXE");
}

#[test]
fn read_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.toml");
    std::fs::write(
        &p,
        "name = \"x\"\ncatalog = \"c\"\nwat = 1\n[targets]\nall = true\n",
    )
    .unwrap();
    let e = read(&p).unwrap_err().to_string();
    assert!(e.contains("bad.toml:3: wat: unknown field"), "{e}");
    assert!(matches!(
        read(&dir.path().join("p.yaml")),
        Err(PlanFileError::UnknownFormat { .. })
    ));
}
