//! Fault injection: what can go wrong on a simulated iDRAC, and the spec
//! language used at start (`--faults`) and by the control API.
//!
//! A spec is a comma-separated list of rules, each `kind[:key=value]*`:
//!
//! ```text
//! fail_job:p=0.1,5xx_burst:host=idrac-003:n=3,latency:ms=200,lc_not_ready:secs=120
//! ```
//!
//! Common keys: `host=NAME` (only that host; default every host), `p=PROB`
//! (probability per opportunity, default 1), `n=COUNT` (how many times the
//! rule fires before it is used up; default depends on the kind).
//!
//! | kind | effect | kind keys | default `n` |
//! |---|---|---|---|
//! | `fail_job` | an update job fails (`SUP0538`, `RED106` on iDRAC10) | | unlimited |
//! | `stuck_job` | an update job stops progressing in `Running` | | unlimited |
//! | `5xx_burst` | HTTP 500 with `SYS518` | | 1 |
//! | `latency` | delay each response by `ms` real milliseconds | `ms` (default 100) | unlimited |
//! | `conn_reset` | the connection is dropped without a response | | 1 |
//! | `session_expiry` | every session expires (next token use gets 401) | | 1 |
//! | `lc_not_ready` | LC reports NotReady and refuses jobs (`LC060`) for `secs` Dell seconds | `secs` (default 300) | unlimited |
//! | `job_queue_full` | job creation fails with `JCP017` | | unlimited |
//! | `host_never_returns` | after the next reset the host stays powered off | | unlimited |
//! | `wrong_version` | an install completes but reports `version` (default: the old version) | `version` | unlimited |
//! | `degraded_health` | system `Status.Health` becomes `health` | `health` (default Critical) | unlimited |

use std::fmt;
use std::str::FromStr;

/// One kind of fault, with its parameters.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Update jobs fail.
    FailJob,
    /// Update jobs get stuck in `Running`.
    StuckJob,
    /// The next `count` requests get HTTP 500 `SYS518`.
    ServerErrorBurst {
        /// Number of failing requests.
        count: u32,
    },
    /// Every response is delayed by `ms` real milliseconds.
    Latency {
        /// Delay in real milliseconds.
        ms: u64,
    },
    /// The next `count` requests have their connection dropped.
    ConnectionReset {
        /// Number of dropped requests.
        count: u32,
    },
    /// All sessions expire: the next request with a token gets 401.
    SessionExpiry,
    /// The Lifecycle Controller is not ready for `secs` Dell seconds.
    LcNotReady {
        /// Duration in Dell (simulated) seconds.
        secs: u64,
    },
    /// Job creation fails with `JCP017`.
    JobQueueFull,
    /// After the next host reset the host never powers back on.
    HostNeverReturns,
    /// Installs report a wrong version (`None`: the version stays the old one).
    WrongVersion {
        /// The version reported after install.
        version: Option<String>,
    },
    /// The system health is degraded (`Warning` or `Critical`).
    DegradedHealth {
        /// `Warning` or `Critical`.
        health: String,
    },
}

impl Fault {
    /// The spec name of the fault kind.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Fault::FailJob => "fail_job",
            Fault::StuckJob => "stuck_job",
            Fault::ServerErrorBurst { .. } => "5xx_burst",
            Fault::Latency { .. } => "latency",
            Fault::ConnectionReset { .. } => "conn_reset",
            Fault::SessionExpiry => "session_expiry",
            Fault::LcNotReady { .. } => "lc_not_ready",
            Fault::JobQueueFull => "job_queue_full",
            Fault::HostNeverReturns => "host_never_returns",
            Fault::WrongVersion { .. } => "wrong_version",
            Fault::DegradedHealth { .. } => "degraded_health",
        }
    }

    /// How many times the fault fires by default (`None` = until cleared).
    pub(crate) fn default_count(&self) -> Option<u32> {
        match self {
            Fault::ServerErrorBurst { count } | Fault::ConnectionReset { count } => Some(*count),
            Fault::SessionExpiry => Some(1),
            _ => None,
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind_name())?;
        match self {
            Fault::ServerErrorBurst { count } | Fault::ConnectionReset { count } => {
                write!(f, ":n={count}")
            }
            Fault::Latency { ms } => write!(f, ":ms={ms}"),
            Fault::LcNotReady { secs } => write!(f, ":secs={secs}"),
            Fault::WrongVersion { version: Some(v) } => write!(f, ":version={v}"),
            Fault::DegradedHealth { health } => write!(f, ":health={health}"),
            _ => Ok(()),
        }
    }
}

/// A fault plus where and how often it applies.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultRule {
    /// The fault.
    pub fault: Fault,
    /// Only this host (by name); `None` = every host.
    pub host: Option<String>,
    /// Probability per opportunity (0..=1).
    pub probability: f64,
    /// Remaining firings; `None` = until cleared.
    pub count: Option<u32>,
}

impl FaultRule {
    /// A rule that always fires, with the fault's default count.
    pub fn new(fault: Fault) -> Self {
        let count = fault.default_count();
        Self {
            fault,
            host: None,
            probability: 1.0,
            count,
        }
    }

    /// Restricts the rule to one host.
    pub fn on_host(mut self, host: impl Into<String>) -> Self {
        self.host = Some(host.into());
        self
    }

    /// Sets the probability per opportunity.
    pub fn with_probability(mut self, p: f64) -> Self {
        self.probability = p.clamp(0.0, 1.0);
        self
    }

    /// Sets how many times the rule fires.
    pub fn times(mut self, n: u32) -> Self {
        self.count = Some(n);
        self
    }
}

impl From<Fault> for FaultRule {
    fn from(f: Fault) -> Self {
        FaultRule::new(f)
    }
}

/// A parsed fault spec: a list of rules.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultSpec {
    /// The rules, in order.
    pub rules: Vec<FaultRule>,
}

impl FaultSpec {
    /// No faults.
    pub fn none() -> Self {
        Self::default()
    }

    /// Parses a spec string (see the module docs).
    pub fn parse(spec: &str) -> Result<Self, FaultSpecError> {
        spec.parse()
    }

    /// Adds a rule.
    pub fn with(mut self, rule: impl Into<FaultRule>) -> Self {
        self.rules.push(rule.into());
        self
    }
}

/// A fault spec could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FaultSpecError {
    /// Unknown fault kind.
    #[error("unknown fault kind {0:?}")]
    UnknownKind(String),
    /// A `key=value` item is malformed or has a bad value.
    #[error("bad fault parameter {0:?}")]
    BadParam(String),
}

impl FromStr for FaultSpec {
    type Err = FaultSpecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut rules = Vec::new();
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            rules.push(item.parse::<FaultRule>()?);
        }
        Ok(FaultSpec { rules })
    }
}

impl FromStr for FaultRule {
    type Err = FaultSpecError;

    fn from_str(item: &str) -> Result<Self, Self::Err> {
        let mut parts = item.split(':').map(str::trim);
        let kind = parts.next().unwrap_or_default().to_ascii_lowercase();
        let mut host = None;
        let mut p = 1.0;
        let mut n: Option<u32> = None;
        let mut params: Vec<(String, String)> = Vec::new();
        for kv in parts {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| FaultSpecError::BadParam(kv.to_string()))?;
            let bad = || FaultSpecError::BadParam(kv.to_string());
            match k.trim() {
                "host" => host = Some(v.trim().to_string()),
                "p" => {
                    p = v.trim().parse::<f64>().map_err(|_| bad())?;
                    if !(0.0..=1.0).contains(&p) {
                        return Err(bad());
                    }
                }
                "n" => n = Some(v.trim().parse().map_err(|_| bad())?),
                other => params.push((other.to_string(), v.trim().to_string())),
            }
        }
        let param = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let num = |name: &str, default: u64| -> Result<u64, FaultSpecError> {
            match param(name) {
                Some(v) => v
                    .parse()
                    .map_err(|_| FaultSpecError::BadParam(format!("{name}={v}"))),
                None => Ok(default),
            }
        };
        let count = n.unwrap_or(1);
        let fault = match kind.as_str() {
            "fail_job" | "failed_job" => Fault::FailJob,
            "stuck_job" => Fault::StuckJob,
            "5xx_burst" | "5xx" | "server_error" | "server_errors" => {
                Fault::ServerErrorBurst { count }
            }
            "latency" => Fault::Latency {
                ms: num("ms", 100)?,
            },
            "conn_reset" | "connection_reset" | "reset" => Fault::ConnectionReset { count },
            "session_expiry" | "session_expired" => Fault::SessionExpiry,
            "lc_not_ready" => Fault::LcNotReady {
                secs: num("secs", 300)?,
            },
            "job_queue_full" | "queue_full" => Fault::JobQueueFull,
            "host_never_returns" | "no_return" | "host_hang" => Fault::HostNeverReturns,
            "wrong_version" => Fault::WrongVersion {
                version: param("version"),
            },
            "degraded_health" | "degraded" => {
                let health = param("health").unwrap_or_else(|| "Critical".into());
                if health != "Warning" && health != "Critical" {
                    return Err(FaultSpecError::BadParam(format!("health={health}")));
                }
                Fault::DegradedHealth { health }
            }
            other => return Err(FaultSpecError::UnknownKind(other.to_string())),
        };
        let mut rule = FaultRule::new(fault);
        rule.host = host;
        rule.probability = p;
        if n.is_some() {
            rule.count = n;
        }
        Ok(rule)
    }
}

/// The discriminant used to look rules up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    FailJob,
    StuckJob,
    ServerError,
    Latency,
    ConnReset,
    SessionExpiry,
    LcNotReady,
    QueueFull,
    NeverReturns,
    WrongVersion,
    Degraded,
}

impl Fault {
    pub(crate) fn kind(&self) -> Kind {
        match self {
            Fault::FailJob => Kind::FailJob,
            Fault::StuckJob => Kind::StuckJob,
            Fault::ServerErrorBurst { .. } => Kind::ServerError,
            Fault::Latency { .. } => Kind::Latency,
            Fault::ConnectionReset { .. } => Kind::ConnReset,
            Fault::SessionExpiry => Kind::SessionExpiry,
            Fault::LcNotReady { .. } => Kind::LcNotReady,
            Fault::JobQueueFull => Kind::QueueFull,
            Fault::HostNeverReturns => Kind::NeverReturns,
            Fault::WrongVersion { .. } => Kind::WrongVersion,
            Fault::DegradedHealth { .. } => Kind::Degraded,
        }
    }
}

/// Active rules of one host, with an injection-time deadline for timed faults.
#[derive(Debug, Default)]
pub(crate) struct ActiveFaults {
    pub(crate) rules: Vec<(FaultRule, Option<tokio::time::Instant>)>,
}

impl ActiveFaults {
    pub(crate) fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Rolls the dice for the first rule of `kind`; consumes one firing.
    pub(crate) fn take(&mut self, kind: Kind, rng: &mut fastrand::Rng) -> Option<Fault> {
        let now = tokio::time::Instant::now();
        self.rules
            .retain(|(_, until)| until.is_none_or(|u| u > now));
        let idx = self
            .rules
            .iter()
            .position(|(r, _)| r.fault.kind() == kind)?;
        let (rule, _) = self.rules.get_mut(idx)?;
        if rule.probability < 1.0 && rng.f64() >= rule.probability {
            return None;
        }
        let fault = rule.fault.clone();
        if let Some(c) = rule.count.as_mut() {
            *c = c.saturating_sub(1);
            if *c == 0 {
                self.rules.remove(idx);
            }
        }
        Some(fault)
    }

    /// The first active rule of `kind`, without consuming it.
    pub(crate) fn peek(&self, kind: Kind) -> Option<&Fault> {
        let now = tokio::time::Instant::now();
        self.rules
            .iter()
            .find(|(r, until)| r.fault.kind() == kind && until.is_none_or(|u| u > now))
            .map(|(r, _)| &r.fault)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_spec() {
        let spec: FaultSpec = "fail_job:p=0.1,5xx_burst:host=idrac-003:n=3,latency:ms=20"
            .parse()
            .unwrap();
        assert_eq!(spec.rules.len(), 3);
        assert_eq!(spec.rules[0].fault, Fault::FailJob);
        assert!((spec.rules[0].probability - 0.1).abs() < 1e-9);
        assert_eq!(spec.rules[1].host.as_deref(), Some("idrac-003"));
        assert_eq!(spec.rules[1].count, Some(3));
        assert_eq!(spec.rules[2].fault, Fault::Latency { ms: 20 });
        assert!("nope".parse::<FaultSpec>().is_err());
        assert!("fail_job:p=2".parse::<FaultSpec>().is_err());
        assert!("fail_job:x".parse::<FaultSpec>().is_err());
        assert!("".parse::<FaultSpec>().unwrap().rules.is_empty());
    }

    #[test]
    fn take_consumes() {
        let mut a = ActiveFaults::default();
        a.rules
            .push((FaultRule::new(Fault::ServerErrorBurst { count: 2 }), None));
        let mut rng = fastrand::Rng::with_seed(1);
        assert!(a.take(Kind::ServerError, &mut rng).is_some());
        assert!(a.take(Kind::ServerError, &mut rng).is_some());
        assert!(a.take(Kind::ServerError, &mut rng).is_none());
    }
}
