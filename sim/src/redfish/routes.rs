//! Path → route resolution, the Allow header per route, and which routes need no auth.

use super::*;

/// Routes the simulator knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Route {
    Redfish,
    Root,
    Metadata,
    OData,
    Systems,
    System,
    SystemReset,
    Bios,
    BiosSettings,
    BootOptions,
    BootOption(String),
    IdracAttributes,
    Chassis,
    ChassisMember,
    Managers,
    Manager,
    ManagerReset,
    SessionService,
    Sessions,
    Session(String),
    UpdateService,
    Inventory,
    InventoryMember(String),
    SimpleUpdate,
    MultipartUpload,
    DellInstall,
    TaskService,
    Tasks,
    Task(String),
    TaskMonitor(String),
    JobService,
    JobServiceJobs,
    JobServiceJob(String),
    DellJobs(&'static str),
    DellJob(&'static str, String),
    DellJobService(&'static str),
    DeleteJobQueue,
    DellLcService(&'static str),
    LcStatus,
    DellIdracCardService(&'static str),
    IdracReset,
    DellSwService(&'static str),
    InstallFromRepository,
    RepoUpdateList,
    AccountService,
    Accounts,
    Account(String),
    Roles,
    Role(String),
    DellSystem,
    NotFound,
}

pub(super) const JOBS_5X: &str = "/redfish/v1/Managers/iDRAC.Embedded.1/Oem/Dell/Jobs";

pub(super) const JOBS_3X: &str = "/redfish/v1/Managers/iDRAC.Embedded.1/Jobs";

pub(super) const OEM_5X: &str = "/redfish/v1/Managers/iDRAC.Embedded.1/Oem/Dell";

pub(super) const OEM_3X: &str = "/redfish/v1/Dell/Managers/iDRAC.Embedded.1";

pub(super) const SW_5X: &str =
    "/redfish/v1/Systems/System.Embedded.1/Oem/Dell/DellSoftwareInstallationService";

pub(super) const SW_3X: &str =
    "/redfish/v1/Dell/Systems/System.Embedded.1/DellSoftwareInstallationService";

pub(super) fn route(host: &Host, segs: &[&str]) -> (Route, &'static str) {
    use Route as R;
    let sys = host.system_path();
    let mgr = host.manager_path();
    let dell = host.is_dell();
    let idrac10 = host.flavor == Flavor::Idrac10;

    match segs {
        ["redfish"] => (R::Redfish, "/redfish"),
        ["redfish", "v1"] => (R::Root, "/redfish/v1"),
        ["redfish", "v1", "$metadata"] => (R::Metadata, "/redfish/v1/$metadata"),
        ["redfish", "v1", "odata"] => (R::OData, "/redfish/v1/odata"),
        ["redfish", "v1", "Systems"] => (R::Systems, "/redfish/v1/Systems"),
        ["redfish", "v1", "Systems", s] if *s == sys => (R::System, "/redfish/v1/Systems/{id}"),
        [
            "redfish",
            "v1",
            "Systems",
            s,
            "Actions",
            "ComputerSystem.Reset",
        ] if *s == sys => (
            R::SystemReset,
            "/redfish/v1/Systems/{id}/Actions/ComputerSystem.Reset",
        ),
        ["redfish", "v1", "Systems", s, "Bios"] if *s == sys => {
            (R::Bios, "/redfish/v1/Systems/{id}/Bios")
        }
        ["redfish", "v1", "Systems", s, "BootOptions"] if *s == sys => {
            (R::BootOptions, "/redfish/v1/Systems/{id}/BootOptions")
        }
        ["redfish", "v1", "Systems", s, "BootOptions", id] if *s == sys => (
            R::BootOption(id.to_string()),
            "/redfish/v1/Systems/{id}/BootOptions/{id}",
        ),
        ["redfish", "v1", "Systems", s, "Bios", "Settings"] if *s == sys => {
            (R::BiosSettings, "/redfish/v1/Systems/{id}/Bios/Settings")
        }
        ["redfish", "v1", "Chassis"] => (R::Chassis, "/redfish/v1/Chassis"),
        ["redfish", "v1", "Chassis", s] if *s == sys => {
            (R::ChassisMember, "/redfish/v1/Chassis/{id}")
        }
        ["redfish", "v1", "Managers"] => (R::Managers, "/redfish/v1/Managers"),
        ["redfish", "v1", "Managers", m] if *m == mgr => (R::Manager, "/redfish/v1/Managers/{id}"),
        ["redfish", "v1", "Managers", m, "Actions", "Manager.Reset"] if *m == mgr => (
            R::ManagerReset,
            "/redfish/v1/Managers/{id}/Actions/Manager.Reset",
        ),
        ["redfish", "v1", "SessionService"] => (R::SessionService, "/redfish/v1/SessionService"),
        ["redfish", "v1", "SessionService", "Sessions", "Members"] => {
            (R::Sessions, "/redfish/v1/SessionService/Sessions/Members")
        }
        ["redfish", "v1", "AccountService"] => (R::AccountService, "/redfish/v1/AccountService"),
        ["redfish", "v1", "AccountService", "Accounts"] => {
            (R::Accounts, "/redfish/v1/AccountService/Accounts")
        }
        ["redfish", "v1", "AccountService", "Accounts", id] => (
            R::Account(id.to_string()),
            "/redfish/v1/AccountService/Accounts/{id}",
        ),
        ["redfish", "v1", "AccountService", "Roles"] => {
            (R::Roles, "/redfish/v1/AccountService/Roles")
        }
        ["redfish", "v1", "AccountService", "Roles", id] => (
            R::Role(id.to_string()),
            "/redfish/v1/AccountService/Roles/{id}",
        ),
        [
            "redfish",
            "v1",
            "Systems",
            "System.Embedded.1",
            "Oem",
            "Dell",
            "DellSystem",
            "System.Embedded.1",
        ] if dell => (
            R::DellSystem,
            "/redfish/v1/Systems/{id}/Oem/Dell/DellSystem/{id}",
        ),
        ["redfish", "v1", "SessionService", "Sessions"] => {
            (R::Sessions, "/redfish/v1/SessionService/Sessions")
        }
        ["redfish", "v1", "Sessions"] if dell => (R::Sessions, "/redfish/v1/Sessions"),
        ["redfish", "v1", "SessionService", "Sessions", id] => (
            R::Session(id.to_string()),
            "/redfish/v1/SessionService/Sessions/{id}",
        ),
        ["redfish", "v1", "Sessions", id] if dell => {
            (R::Session(id.to_string()), "/redfish/v1/Sessions/{id}")
        }
        ["redfish", "v1", "UpdateService"] => (R::UpdateService, "/redfish/v1/UpdateService"),
        ["redfish", "v1", "UpdateService", "FirmwareInventory"] => {
            (R::Inventory, "/redfish/v1/UpdateService/FirmwareInventory")
        }
        ["redfish", "v1", "UpdateService", "FirmwareInventory", id] => (
            R::InventoryMember(id.to_string()),
            "/redfish/v1/UpdateService/FirmwareInventory/{id}",
        ),
        [
            "redfish",
            "v1",
            "UpdateService",
            "Actions",
            "UpdateService.SimpleUpdate",
        ] => (
            R::SimpleUpdate,
            "/redfish/v1/UpdateService/Actions/UpdateService.SimpleUpdate",
        ),
        ["redfish", "v1", "UpdateService", "MultipartUpload"] => (
            R::MultipartUpload,
            "/redfish/v1/UpdateService/MultipartUpload",
        ),
        [
            "redfish",
            "v1",
            "UpdateService",
            "Actions",
            "Oem",
            "DellUpdateService.Install",
        ] if dell && !idrac10 => (
            R::DellInstall,
            "/redfish/v1/UpdateService/Actions/Oem/DellUpdateService.Install",
        ),
        ["redfish", "v1", "TaskService"] => (R::TaskService, "/redfish/v1/TaskService"),
        ["redfish", "v1", "TaskService", "Tasks"] => (R::Tasks, "/redfish/v1/TaskService/Tasks"),
        ["redfish", "v1", "TaskService", "Tasks", id] => (
            R::Task(id.to_string()),
            "/redfish/v1/TaskService/Tasks/{id}",
        ),
        ["redfish", "v1", "TaskService", "TaskMonitors", id] => (
            R::TaskMonitor(id.to_string()),
            "/redfish/v1/TaskService/TaskMonitors/{id}",
        ),
        ["redfish", "v1", "JobService"] if dell => (R::JobService, "/redfish/v1/JobService"),
        ["redfish", "v1", "JobService", "Jobs"] if dell => {
            (R::JobServiceJobs, "/redfish/v1/JobService/Jobs")
        }
        ["redfish", "v1", "JobService", "Jobs", id] if dell => (
            R::JobServiceJob(id.to_string()),
            "/redfish/v1/JobService/Jobs/{id}",
        ),
        [
            "redfish",
            "v1",
            "Managers",
            "iDRAC.Embedded.1",
            "Oem",
            "Dell",
            "Jobs",
        ] if dell => (
            R::DellJobs(JOBS_5X),
            "/redfish/v1/Managers/{id}/Oem/Dell/Jobs",
        ),
        ["redfish", "v1", "Managers", "iDRAC.Embedded.1", "Jobs"] if dell => {
            (R::DellJobs(JOBS_3X), "/redfish/v1/Managers/{id}/Jobs")
        }
        [
            "redfish",
            "v1",
            "Managers",
            "iDRAC.Embedded.1",
            "Oem",
            "Dell",
            "Jobs",
            id,
        ] if dell => (
            R::DellJob(JOBS_5X, id.to_string()),
            "/redfish/v1/Managers/{id}/Oem/Dell/Jobs/{id}",
        ),
        ["redfish", "v1", "Managers", "iDRAC.Embedded.1", "Jobs", id] if dell => (
            R::DellJob(JOBS_3X, id.to_string()),
            "/redfish/v1/Managers/{id}/Jobs/{id}",
        ),
        [
            "redfish",
            "v1",
            "Managers",
            "iDRAC.Embedded.1",
            "Oem",
            "Dell",
            svc,
            rest @ ..,
        ]
        | [
            "redfish",
            "v1",
            "Dell",
            "Managers",
            "iDRAC.Embedded.1",
            svc,
            rest @ ..,
        ] if dell => {
            let base = if segs.get(2) == Some(&"Dell") {
                OEM_3X
            } else {
                OEM_5X
            };
            match (*svc, rest) {
                ("DellAttributes", ["iDRAC.Embedded.1"]) => {
                    (R::IdracAttributes, "{oem}/DellAttributes/iDRAC.Embedded.1")
                }
                ("DellJobService", []) => (R::DellJobService(base), "{oem}/DellJobService"),
                ("DellJobService", ["Actions", "DellJobService.DeleteJobQueue"]) => (
                    R::DeleteJobQueue,
                    "{oem}/DellJobService/Actions/DellJobService.DeleteJobQueue",
                ),
                ("DellLCService", []) => (R::DellLcService(base), "{oem}/DellLCService"),
                ("DellLCService", ["Actions", "DellLCService.GetRemoteServicesAPIStatus"]) => (
                    R::LcStatus,
                    "{oem}/DellLCService/Actions/DellLCService.GetRemoteServicesAPIStatus",
                ),
                ("DelliDRACCardService", []) => {
                    (R::DellIdracCardService(base), "{oem}/DelliDRACCardService")
                }
                ("DelliDRACCardService", ["Actions", "DelliDRACCardService.iDRACReset"]) => (
                    R::IdracReset,
                    "{oem}/DelliDRACCardService/Actions/DelliDRACCardService.iDRACReset",
                ),
                _ => (R::NotFound, "{unknown}"),
            }
        }
        [
            "redfish",
            "v1",
            "Systems",
            "System.Embedded.1",
            "Oem",
            "Dell",
            "DellSoftwareInstallationService",
            rest @ ..,
        ]
        | [
            "redfish",
            "v1",
            "Dell",
            "Systems",
            "System.Embedded.1",
            "DellSoftwareInstallationService",
            rest @ ..,
        ] if dell => {
            let base = if segs.get(2) == Some(&"Dell") {
                SW_3X
            } else {
                SW_5X
            };
            match rest {
                [] => (
                    R::DellSwService(base),
                    "{sw}/DellSoftwareInstallationService",
                ),
                [
                    "Actions",
                    "DellSoftwareInstallationService.InstallFromRepository",
                ] => (
                    R::InstallFromRepository,
                    "{sw}/Actions/DellSoftwareInstallationService.InstallFromRepository",
                ),
                [
                    "Actions",
                    "DellSoftwareInstallationService.GetRepoBasedUpdateList",
                ] => (
                    R::RepoUpdateList,
                    "{sw}/Actions/DellSoftwareInstallationService.GetRepoBasedUpdateList",
                ),
                _ => (R::NotFound, "{unknown}"),
            }
        }
        _ => (R::NotFound, "{unknown}"),
    }
}

pub(super) fn allowed(route: &Route) -> &'static str {
    use Route as R;
    match route {
        R::Sessions => "GET, HEAD, POST",
        R::Session(_) => "GET, HEAD, DELETE",
        R::SessionService => "GET, HEAD, PATCH",
        R::Inventory => "GET, HEAD",
        R::DellJob(..) => "GET, HEAD, DELETE",
        R::DellJobs(_) => "GET, HEAD, POST",
        R::System | R::BiosSettings | R::IdracAttributes => "GET, HEAD, PATCH",
        R::SystemReset
        | R::ManagerReset
        | R::SimpleUpdate
        | R::MultipartUpload
        | R::DellInstall
        | R::DeleteJobQueue
        | R::LcStatus
        | R::IdracReset
        | R::InstallFromRepository
        | R::RepoUpdateList => "POST",
        R::NotFound => "",
        _ => "GET, HEAD",
    }
}

pub(super) fn public(route: &Route, method: &Method) -> bool {
    matches!(
        route,
        Route::Redfish | Route::Root | Route::Metadata | Route::OData
    ) || (matches!(route, Route::Sessions) && method == Method::POST)
}
