//! Scripted fakes of the BMC, cluster and resolver ports. Time inside them
//! is tokio time, so scenario tests run on paused time: an "update that
//! takes 12 minutes" takes no wall time.

mod bmc;
mod cluster;
mod resolver;

pub use bmc::*;
pub use cluster::*;
pub use resolver::*;

use std::sync::{Mutex, MutexGuard};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
