//! Request counters per (method, route template), for the control API.

use super::*;

/// Request counters without per-request allocation.
#[derive(Debug, Default, Clone)]
pub(crate) struct Stats {
    pub(crate) total: u64,
    pub(crate) by_endpoint: std::collections::HashMap<(&'static str, &'static str), u64>,
}

impl Stats {
    pub(crate) fn snapshot(&self) -> RequestStats {
        RequestStats {
            total: self.total,
            by_endpoint: self
                .by_endpoint
                .iter()
                .map(|((m, t), n)| ((m.to_string(), t.to_string()), *n))
                .collect(),
        }
    }
}

fn static_method(m: &str) -> &'static str {
    match m {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        _ => "OTHER",
    }
}

/// Counts per (method, template), for the stats.
pub(crate) fn record(st: &mut HostState, method: &str, template: &'static str) {
    st.stats.total += 1;
    *st.stats
        .by_endpoint
        .entry((static_method(method), template))
        .or_insert(0) += 1;
}
