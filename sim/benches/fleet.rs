//! Benchmark: 10,000 simulated iDRACs in one process (virtual-host mode).
//!
//! Prints idle RSS (VmRSS/VmHWM from /proc/self/status) and requests/s from a
//! reqwest client over loopback. Run: `cargo bench -p firmflow-sim --bench fleet`
//! (env `SIM_BENCH_HOSTS`, `SIM_BENCH_REQUESTS`, `SIM_BENCH_CONCURRENCY`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use firmflow_sim::Fleet;

fn status_kb(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// User + system CPU seconds of this process (from /proc/self/stat).
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields 14 and 15 (utime, stime) are at 11 and 12 after the command name.
    (ticks(11) + ticks(12)) / 100.0
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let hosts = env("SIM_BENCH_HOSTS", 10_000);
    let requests = env("SIM_BENCH_REQUESTS", 200_000);
    let concurrency = env("SIM_BENCH_CONCURRENCY", 64);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let base_rss = status_kb("VmRSS:");
        let t0 = Instant::now();
        let fleet = Fleet::builder()
            .hosts(hosts)
            .http(true)
            .virtual_hosts(true)
            .seed(1)
            .start()
            .await
            .expect("fleet starts");
        let startup = t0.elapsed();
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let idle_rss = status_kb("VmRSS:");
        println!("hosts={hosts} startup={:.2}s rss_before={} MB idle_rss={} MB (VmHWM {} MB)",
            startup.as_secs_f64(), base_rss / 1024, idle_rss / 1024, status_kb("VmHWM:") / 1024);
        let addr = fleet.hosts()[0].addr;
        let headers: Arc<Vec<String>> = Arc::new(fleet.hosts().iter().map(|h| h.host_header.clone()).collect());
        let client = reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(concurrency)
            .build()
            .expect("client");
        let done = Arc::new(AtomicU64::new(0));
        let errors = Arc::new(AtomicU64::new(0));
        let per = requests / concurrency;
        let t = Instant::now();
        let cpu0 = cpu_secs();
        let mut tasks = Vec::new();
        for w in 0..concurrency {
            let (client, headers, done, errors) = (client.clone(), headers.clone(), done.clone(), errors.clone());
            tasks.push(tokio::spawn(async move {
                let url = format!("http://{addr}/redfish/v1/Systems/System.Embedded.1");
                for i in 0..per {
                    let host = &headers[(w * 7919 + i * 104_729) % headers.len()];
                    let r = client
                        .get(&url)
                        .header("Host", host)
                        .basic_auth("root", Some("calvin"))
                        .send()
                        .await;
                    match r {
                        Ok(r) if r.status().is_success() => {
                            let _ = r.bytes().await;
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                        _ => {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
        let secs = t.elapsed().as_secs_f64();
        let cpu = cpu_secs() - cpu0;
        let ok = done.load(Ordering::Relaxed);
        println!(
            "requests={ok} errors={} concurrency={concurrency} elapsed={secs:.2}s throughput={:.0} req/s (GET /redfish/v1/Systems/System.Embedded.1, Basic auth, random host)",
            errors.load(Ordering::Relaxed),
            ok as f64 / secs
        );
        println!(
            "cpu={cpu:.2}s (server+client) => {:.0} requests per CPU-second; loadavg: {}",
            ok as f64 / cpu.max(0.001),
            std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim()
        );
        println!("rss_after_load={} MB VmHWM={} MB", status_kb("VmRSS:") / 1024, status_kb("VmHWM:") / 1024);
        fleet.shutdown().await;
    });
}
