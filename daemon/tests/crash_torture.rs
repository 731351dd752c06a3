//! Crash torture (issue 13): `firmflowd` child processes on one PostgreSQL
//! database of the test's own, the simulated iDRAC fleet over HTTPS in this
//! process, and SIGKILL at random points of the campaign, again and again.
//!
//! Kill points are drawn from a seeded RNG (the seed is printed; set
//! `FIRMFLOW_TORTURE_SEED` to replay one): either "after N more audit
//! events of the plan" (N random), or "inside the install window" (an
//! update job the iDRAC has accepted and not finished, k polls after it is
//! first seen, k random): the dangerous one, where a successor must adopt
//! the job, never submit it again. Some kills hit one of two daemons on
//! the same database (victims alternate) and the survivor must take its
//! leases over before the victim comes back; the others kill every daemon
//! and start one again.
//!
//! When the plan completes before the kills are used up, the fleet's
//! versions are set back and another plan (a "round") starts. Each round
//! ends with: the plan and every run `completed`; the simulator's counters
//! show each component of each host installed exactly once in that round;
//! every host powered on and no run holding maintenance mode (this daemon
//! has no vCenter, so the checkpoint's maintenance state is what applies);
//! the audit trail without a gap (seq strictly increasing, event ids
//! unique, one `update_started` and one `update_completed` per run, the
//! claim events' epochs exactly 1..=lease_epoch, one `run_reclaimed` per
//! resume, the final transition the run's last state event).
//!
//! The short form (5 kills, two of them with two daemons) runs in CI; the
//! long form reads `FIRMFLOW_TORTURE_KILLS` (default 50):
//! `cargo test --release -p firmflowd --test crash_torture -- --ignored --nocapture`.

mod support;

use firmflow_core::SystemClock;
use firmflow_core::model::*;
use firmflow_core::store::{EventFilter, EventStore as _, PlanStore as _, RunStore as _};
use firmflow_store_postgres::{PgConfig, PgStore};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::*;

/// Components the lab's catalog updates.
const COMPONENTS: [&str; 2] = ["159", "25227"];
/// Simulated iDRACs in the fleet.
const HOSTS: usize = 6;
/// Bound on any one wait for a condition (a plan to finish, a takeover).
const WAIT: Duration = Duration::from_secs(120);
/// Between two polls of the store or the simulator.
const POLL: Duration = Duration::from_millis(15);

/// splitmix64: reproducible kill points without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

/// Where a kill lands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Point {
    /// After this many more audit events of the plan.
    Events(u64),
    /// This many polls after an accepted, unfinished update job is seen.
    InstallWindow(u64),
}

/// What the torture did.
#[derive(Debug, Default)]
struct Figures {
    seed: u64,
    kills: usize,
    install_window_kills: usize,
    pair_kills: usize,
    /// Runs of a killed daemon taken over by the other one (pair kills).
    survivor_takeovers: usize,
    rounds: usize,
    runs: usize,
    resumes: u64,
    /// Installs per host over all rounds (every component).
    installs_per_host: BTreeMap<String, usize>,
    elapsed: Duration,
}

impl Figures {
    fn print(&self) {
        let per_host: BTreeSet<usize> = self.installs_per_host.values().copied().collect();
        println!(
            "crash torture: seed {} | kills {} ({} in the install window, {} of one of two \
             daemons, {} runs taken over by the survivor) | rounds {} | runs {} (all completed, \
             {} resumes) | installs per host {:?} ({} components x {} rounds) | {:.1} s",
            self.seed,
            self.kills,
            self.install_window_kills,
            self.pair_kills,
            self.survivor_takeovers,
            self.rounds,
            self.runs,
            self.resumes,
            per_host,
            COMPONENTS.len(),
            self.rounds,
            self.elapsed.as_secs_f64()
        );
    }
}

/// The daemons of the torture: slot 0 always runs between kills, slot 1
/// only around the kills of one of two daemons.
struct Daemons {
    cfg: std::path::PathBuf,
    slots: [Option<Daemon>; 2],
}

impl Daemons {
    fn ensure(&mut self, i: usize) {
        if self.slots[i].is_none() {
            self.slots[i] = Some(start(&self.cfg));
        }
    }
    fn api(&self) -> Api {
        self.slots
            .iter()
            .flatten()
            .next()
            .expect("a live daemon")
            .client(Some("operator-token"))
    }
    async fn kill(&mut self, i: usize) -> Option<String> {
        let d = self.slots[i].take()?;
        let worker = d.worker.clone();
        tokio::task::spawn_blocking(move || d.kill())
            .await
            .expect("join");
        Some(worker)
    }
}

async fn import_hosts(api: &Api, w: &World) {
    let csv = std::fs::read_to_string(&w.lab.hosts_csv).expect("hosts.csv");
    let (code, body) = api.post_raw("/api/v1/hosts/import", "text/csv", csv).await;
    assert_eq!(code, 200, "{body}");
}

async fn start_plan(api: &Api, w: &World, round: usize) -> PlanId {
    let mut body = w.plan_body(&format!("torture round {round}"));
    body["approval_required"] = json!(false);
    body["policy"]["maxConcurrent"] = json!(3);
    // Every kill is a takeover of the runs in flight; the resume cap (a
    // run that keeps killing its workers is given up) is not under test.
    body["policy"]["maxResumes"] = json!(1000);
    let (code, created) = api.post("/api/v1/plans", &body).await;
    assert_eq!(code, 201, "{created}");
    let id = created["plan"]["id"].as_str().expect("plan id").to_string();
    let (code, b) = api
        .post(&format!("/api/v1/plans/{id}/start"), &json!({}))
        .await;
    assert_eq!(code, 200, "{b}");
    PlanId(id.parse().expect("uuid"))
}

fn installs(w: &World) -> BTreeMap<(String, String), usize> {
    w.flashes()
        .into_iter()
        .map(|(h, c, n)| ((h, c), n))
        .collect()
}

/// Whether an update job the iDRAC accepted is still unfinished.
fn in_install_window(w: &World) -> bool {
    w.fleet.hosts().iter().any(|h| {
        w.fleet.jobs(&h.name).iter().any(|(id, _, state, _)| {
            id.starts_with("JID_") && !matches!(state.as_str(), "Completed" | "Failed")
        })
    })
}

async fn plan_final(pg: &PgStore, plan: PlanId) -> Option<PlanStatus> {
    let s = pg.get_plan(plan).await.expect("plan").status;
    matches!(
        s,
        PlanStatus::Completed | PlanStatus::Failed | PlanStatus::Cancelled
    )
    .then_some(s)
}

/// Waits for the kill point (and, for a kill of one of two daemons, for
/// the victim to hold a run, so that there is something to take over);
/// `false` when the plan ended first.
async fn reach(pg: &PgStore, w: &World, plan: PlanId, point: Point, victim: Option<&str>) -> bool {
    let deadline = Instant::now() + WAIT;
    let mut after = pg
        .list_events(&EventFilter {
            plan_id: Some(plan),
            ..Default::default()
        })
        .await
        .expect("events")
        .last()
        .map(|e| e.seq);
    let mut seen = 0u64;
    loop {
        assert!(
            Instant::now() < deadline,
            "kill point {point:?} not reached"
        );
        let holds = match victim {
            Some(v) => held_by(pg, plan, v).await > 0,
            None => true,
        };
        match point {
            Point::Events(n) => {
                let ev = pg
                    .list_events(&EventFilter {
                        plan_id: Some(plan),
                        after_seq: after,
                        ..Default::default()
                    })
                    .await
                    .expect("events");
                seen += ev.len() as u64;
                after = ev.last().map(|e| e.seq).or(after);
                if seen >= n && holds {
                    return true;
                }
            }
            Point::InstallWindow(k) => {
                if in_install_window(w) {
                    if seen >= k && holds {
                        return true;
                    }
                    seen += 1;
                }
            }
        }
        if plan_final(pg, plan).await.is_some() {
            return false;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Runs of `plan` in flight under `worker`'s lease.
async fn held_by(pg: &PgStore, plan: PlanId, worker: &str) -> usize {
    pg.list_runs(plan)
        .await
        .expect("runs")
        .iter()
        .filter(|r| {
            r.state == RunState::Running
                && r.lease_owner.as_ref().map(|o| o.0.as_str()) == Some(worker)
        })
        .count()
}

/// Waits until no run of `plan` is held by the dead `worker` (the survivor
/// took them over, or they ended); how many it held at the kill.
async fn await_takeover(pg: &PgStore, plan: PlanId, worker: &str) -> usize {
    let held = held_by(pg, plan, worker).await;
    let deadline = Instant::now() + WAIT;
    while held_by(pg, plan, worker).await > 0 {
        assert!(
            Instant::now() < deadline,
            "the surviving daemon never took over the leases of {worker}"
        );
        tokio::time::sleep(POLL).await;
    }
    held
}

/// The end-of-round invariants.
async fn check_round(
    pg: &PgStore,
    w: &World,
    plan: PlanId,
    before: &BTreeMap<(String, String), usize>,
    f: &mut Figures,
) {
    let status = pg.get_plan(plan).await.expect("plan").status;
    let runs = pg.list_runs(plan).await.expect("runs");
    let why: Vec<_> = runs
        .iter()
        .map(|r| (r.state, r.last_error.clone()))
        .collect();
    assert_eq!(status, PlanStatus::Completed, "seed {}: {why:?}", f.seed);
    assert_eq!(runs.len(), HOSTS);
    // Exactly once per host and component in this round.
    for ((h, c), n) in installs(w) {
        let was = before.get(&(h.clone(), c.clone())).copied().unwrap_or(0);
        assert_eq!(
            n - was,
            1,
            "seed {}: {h} component {c} installed {} times in round {}: {:?}",
            f.seed,
            n - was,
            f.rounds,
            w.fleet.installs(&h)
        );
        *f.installs_per_host.entry(h).or_default() += 1;
    }
    for h in w.fleet.hosts() {
        assert_eq!(
            w.fleet.power_state(&h.name).as_deref(),
            Some("On"),
            "{}",
            h.name
        );
    }
    let events = pg
        .list_events(&EventFilter {
            plan_id: Some(plan),
            ..Default::default()
        })
        .await
        .expect("events");
    assert!(
        events.windows(2).all(|p| p[0].seq < p[1].seq),
        "seed {}: plan events out of order",
        f.seed
    );
    let ids: BTreeSet<_> = events.iter().map(|e| e.id).collect();
    assert_eq!(ids.len(), events.len(), "an event id repeats");
    for r in &runs {
        let ctx = format!("seed {} round {} run {}", f.seed, f.rounds, r.id);
        assert_eq!(r.state, RunState::Completed, "{ctx}: {:?}", r.last_error);
        assert!(
            !r.ctx.checkpoint.holds_maintenance()
                && matches!(
                    r.ctx.checkpoint.maintenance,
                    MaintenanceState::NotEntered | MaintenanceState::Exited
                ),
            "{ctx}: maintenance {:?}",
            r.ctx.checkpoint.maintenance
        );
        let mine: Vec<_> = events
            .iter()
            .filter(|e| e.event.run_id == Some(r.id))
            .collect();
        let count = |t: EventType| mine.iter().filter(|e| e.event.event_type == t).count();
        assert_eq!(count(EventType::UpdateStarted), 1, "{ctx}: update_started");
        assert_eq!(
            count(EventType::UpdateCompleted),
            1,
            "{ctx}: update_completed"
        );
        assert_eq!(
            count(EventType::RunReclaimed),
            r.resumes as usize,
            "{ctx}: a takeover without its event"
        );
        let epochs: Vec<u64> = mine
            .iter()
            .filter(|e| {
                matches!(
                    e.event.event_type,
                    EventType::RunClaimed | EventType::RunReclaimed
                )
            })
            .filter_map(|e| e.event.details.get("epoch").and_then(|v| v.as_u64()))
            .collect();
        assert_eq!(
            epochs,
            (1..=r.lease_epoch).collect::<Vec<_>>(),
            "{ctx}: every claim has its event, in order"
        );
        let last_to = mine
            .iter()
            .rev()
            .find_map(|e| e.event.details.get("to").and_then(|v| v.as_str()));
        assert_eq!(last_to, Some("completed"), "{ctx}: final transition last");
        f.resumes += u64::from(r.resumes);
    }
    f.runs += runs.len();
}

async fn torture(kills: usize) -> Figures {
    let seed = std::env::var("FIRMFLOW_TORTURE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        });
    println!("crash torture: seed {seed} (FIRMFLOW_TORTURE_SEED={seed} replays the kill points)");
    let began = Instant::now();
    let mut rng = Rng(seed);
    let mut f = Figures {
        seed,
        ..Default::default()
    };
    let w = world(HOSTS).await;
    let db = Db::new("torture").await;
    let cfg = w.config(&format!("kind = \"postgres\"\nurl = \"{}\"", db.url()));
    let mut ds = Daemons {
        cfg,
        slots: [None, None],
    };
    ds.ensure(0);
    import_hosts(
        &ds.slots[0]
            .as_ref()
            .expect("daemon")
            .client(Some("admin-token")),
        &w,
    )
    .await;
    let pg = PgStore::connect(
        PgConfig::new(db.url()).max_connections(2),
        Arc::new(SystemClock),
    )
    .await
    .expect("the test's own store handle");
    let baseline: Vec<(String, String, String)> = w
        .fleet
        .hosts()
        .iter()
        .flat_map(|h| {
            w.fleet
                .firmware(&h.name)
                .into_iter()
                .filter(|(c, _, _)| COMPONENTS.contains(&c.as_str()))
                .map(|(c, _, v)| (h.name.clone(), c, v))
                .collect::<Vec<_>>()
        })
        .collect();
    let mut pair_victim = 0;
    while f.kills < kills {
        // A new round: the fleet back at its old versions, a new plan.
        for (h, c, v) in &baseline {
            assert!(w.fleet.set_component_version(h, c, v));
        }
        let before = installs(&w);
        let plan = start_plan(&ds.api(), &w, f.rounds).await;
        while f.kills < kills {
            // The first kill is in the install window; every third of one
            // of two daemons (the second of the short form among them).
            let point = if f.kills == 0 || rng.range(0, 1) == 0 {
                Point::InstallWindow(rng.range(0, 6))
            } else {
                Point::Events(rng.range(1, 30))
            };
            let pair = f.kills % 3 == 1;
            if pair {
                ds.ensure(1);
            }
            let victim = pair.then(|| {
                ds.slots[pair_victim]
                    .as_ref()
                    .expect("both daemons run")
                    .worker
                    .clone()
            });
            if !reach(&pg, &w, plan, point, victim.as_deref()).await {
                break;
            }
            f.kills += 1;
            if matches!(point, Point::InstallWindow(_)) {
                f.install_window_kills += 1;
            }
            if pair {
                f.pair_kills += 1;
                let victim = pair_victim;
                pair_victim = 1 - pair_victim;
                let worker = ds.kill(victim).await.expect("victim");
                f.survivor_takeovers += await_takeover(&pg, plan, &worker).await;
                ds.ensure(victim);
            } else {
                ds.kill(0).await;
                ds.kill(1).await;
                ds.ensure(0);
            }
        }
        let deadline = Instant::now() + WAIT;
        while plan_final(&pg, plan).await.is_none() {
            assert!(Instant::now() < deadline, "seed {seed}: plan stuck");
            tokio::time::sleep(POLL).await;
        }
        check_round(&pg, &w, plan, &before, &mut f).await;
        f.rounds += 1;
    }
    ds.kill(0).await;
    ds.kill(1).await;
    pg.close().await;
    db.drop_db().await;
    f.elapsed = began.elapsed();
    f.print();
    f
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_sigkills_including_one_of_two_daemons_leave_every_component_installed_once() {
    let f = torture(5).await;
    assert_eq!(f.kills, 5);
    assert!(f.install_window_kills >= 1 && f.pair_kills >= 1, "{f:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long form: FIRMFLOW_TORTURE_KILLS (default 50) kills, minutes"]
async fn sigkill_torture_long_form() {
    let kills = std::env::var("FIRMFLOW_TORTURE_KILLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(50);
    let f = torture(kills).await;
    assert_eq!(f.kills, kills);
}
