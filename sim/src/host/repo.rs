//! The `RepositoryUpdate` job: reads the catalog, compares it with the
//! inventory for the host's SystemID, and spawns one firmware job per
//! applicable package.

use super::*;

/// Options of `InstallFromRepository`.
#[derive(Debug, Clone)]
pub(crate) struct RepoRequest {
    pub(crate) catalog_url: String,
    pub(crate) apply: bool,
    pub(crate) reboot: bool,
    pub(crate) same_versions: bool,
    pub(crate) downgrades: bool,
}

/// Runs a `RepositoryUpdate` job: reads the catalog, compares, spawns one
/// firmware job per applicable package.
pub(crate) async fn run_repo_job(inner: Arc<Inner>, host: Arc<Host>, id: String, req: RepoRequest) {
    let clock = &inner.clock;
    clock.sleep(durations::NEW).await;
    if !set_state(&host, &id, JobState::Downloading, messages::RED003, 0) {
        return;
    }
    let cat = match inner.fetch(&req.catalog_url).await {
        Ok(bytes) => catalog::parse(&bytes),
        Err(_) => {
            finish(
                &host,
                &inner,
                &id,
                JobState::Failed,
                messages::RED006,
                Vec::new(),
            );
            return;
        }
    };
    let cat = match cat {
        Ok(c) => c,
        Err(_) => {
            finish(
                &host,
                &inner,
                &id,
                JobState::Failed,
                messages::RED008,
                Vec::new(),
            );
            return;
        }
    };
    clock.sleep(durations::DOWNLOAD).await;
    // Base for package URLs: baseLocation if set, else the catalog's folder.
    let base = match cat.base_location.as_deref().filter(|b| !b.is_empty()) {
        Some(b) if b.contains("://") => b.trim_end_matches('/').to_string(),
        Some(b) => {
            let proto = cat
                .protocols
                .as_deref()
                .and_then(|p| p.split(',').next())
                .map(|p| p.trim().to_ascii_lowercase())
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| "https".into());
            format!("{proto}://{}", b.trim_end_matches('/'))
        }
        None => req
            .catalog_url
            .rsplit_once('/')
            .map(|(dir, _)| dir.to_string())
            .unwrap_or_default(),
    };
    let mut entries = Vec::new();
    {
        let st = host.lock();
        for sc in &cat.components {
            if !sc.system_ids.is_empty() && !sc.system_ids.contains(&host.model.system_id) {
                continue;
            }
            let Some((comp, c)) = st.components.iter().enumerate().find(|(_, c)| {
                sc.component_ids.iter().any(|id| c.matches(id))
                    || sc.pci_ids.iter().any(|p| c.matches(p))
            }) else {
                continue;
            };
            let ord = inventory::compare_versions(&sc.vendor_version, &c.version);
            let wanted = match ord {
                std::cmp::Ordering::Greater => true,
                std::cmp::Ordering::Equal => req.same_versions,
                std::cmp::Ordering::Less => req.downgrades,
            };
            if !wanted {
                continue;
            }
            let reboot_type = if c.kind.restarts_idrac() {
                "IDRAC"
            } else if needs_host_reboot(c.kind, sc.reboot_required) {
                "HOST"
            } else {
                "NONE"
            };
            entries.push(RepoEntry {
                comp,
                package_name: sc.path.rsplit('/').next().unwrap_or(&sc.path).to_string(),
                package_path: sc.path.clone(),
                version: sc.vendor_version.clone(),
                installed: c.version.clone(),
                reboot_type,
                criticality: sc.criticality.clone(),
                job_id: String::new(),
            });
        }
    }
    // Dell order: immediate first, host-reboot staged second, iDRAC last.
    entries.sort_by_key(|e| match e.reboot_type {
        "NONE" => 0,
        "HOST" => 1,
        _ => 2,
    });
    if entries.is_empty() {
        host.lock().repo = Some(Vec::new());
        finish(
            &host,
            &inner,
            &id,
            JobState::Completed,
            messages::SUP029,
            Vec::new(),
        );
        return;
    }
    if !req.apply {
        host.lock().repo = Some(entries);
        finish(
            &host,
            &inner,
            &id,
            JobState::Completed,
            messages::RED001,
            Vec::new(),
        );
        return;
    }
    set_state(&host, &id, JobState::Running, messages::PR20, 50);
    let mut children = Vec::new();
    for e in &mut entries {
        let name = {
            let st = host.lock();
            st.components
                .get(e.comp)
                .map(|c| c.name.clone())
                .unwrap_or_default()
        };
        let child = {
            let mut st = host.lock();
            create_job(
                &host,
                &inner,
                &mut st,
                NewJob {
                    name: format!("Firmware Update: {}", firmware_job_name(&name)),
                    job_type: "FirmwareUpdate",
                },
            )
        };
        let Ok(child) = child else { continue };
        e.job_id = child.clone();
        let url = format!("{base}/{}", e.package_path.trim_start_matches('/'));
        children.push(child.clone());
        let (i2, h2) = (inner.clone(), host.clone());
        inner.spawn(
            async move { run_update_job(i2, h2, child, ImageSource::Url(url), false).await },
        );
    }
    host.lock().repo = Some(entries);
    // Wait until every child has downloaded (or failed).
    loop {
        clock.sleep(10.0).await;
        let st = host.lock();
        let pending = children.iter().any(|c| {
            st.job(c).is_some_and(|j| {
                matches!(
                    j.state,
                    JobState::New | JobState::Downloading | JobState::Downloaded
                )
            })
        });
        if !pending {
            break;
        }
    }
    let (any_failed, any_scheduled) = {
        let st = host.lock();
        let failed = children
            .iter()
            .any(|c| st.job(c).is_some_and(|j| j.state == JobState::Failed));
        let scheduled = children
            .iter()
            .any(|c| st.job(c).is_some_and(|j| j.state == JobState::Scheduled));
        (failed, scheduled)
    };
    if any_failed {
        finish(
            &host,
            &inner,
            &id,
            JobState::CompletedWithErrors,
            messages::RED001,
            Vec::new(),
        );
    } else {
        finish(
            &host,
            &inner,
            &id,
            JobState::Completed,
            messages::RED001,
            Vec::new(),
        );
    }
    if req.reboot && any_scheduled {
        reset_host(inner.clone(), host.clone(), ResetKind::Restart).await;
    }
}

/// Dell job-name form of a component ("iDRAC with Lifecycle Controller").
pub(crate) fn firmware_job_name(component_name: &str) -> String {
    if component_name == "Integrated Dell Remote Access Controller" {
        "iDRAC with Lifecycle Controller".to_string()
    } else {
        component_name
            .split(" - ")
            .next()
            .unwrap_or(component_name)
            .to_string()
    }
}
