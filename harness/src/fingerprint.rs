//! [`Fingerprint`]: the environment a run measured in, so that figures from different machines are never
//! compared silently.

use serde::{Deserialize, Serialize};

/// Host, cores, memory, kernel, versions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// Host name.
    pub host: String,
    /// Logical CPUs.
    pub cores: usize,
    /// Total memory in MiB.
    pub memory_mib: u64,
    /// CPU model.
    pub cpu: String,
    /// Kernel release.
    pub kernel: String,
    /// Harness version.
    pub harness: String,
}

impl Fingerprint {
    /// The current machine.
    pub fn current() -> Fingerprint {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        let cpu = read("/proc/cpuinfo")
            .lines()
            .find_map(|l| l.strip_prefix("model name").map(|r| r.trim_start_matches([' ', '\t', ':']).to_string()))
            .unwrap_or_else(|| "unknown".into());
        let memory_mib = read("/proc/meminfo")
            .lines()
            .find_map(|l| {
                l.strip_prefix("MemTotal:").and_then(|r| r.trim().trim_end_matches(" kB").parse::<u64>().ok())
            })
            .map_or(0, |kb| kb / 1024);
        Fingerprint {
            host: read("/proc/sys/kernel/hostname").trim().to_string(),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_mib,
            cpu,
            kernel: read("/proc/sys/kernel/osrelease").trim().to_string(),
            harness: env!("CARGO_PKG_VERSION").to_string(),
        }
    }

    /// The part of the fingerprint that decides whether two runs are comparable (not the host name).
    pub fn comparable_key(&self) -> String {
        format!("{}|{}|{}|{}", self.cores, self.memory_mib / 1024, self.cpu, self.kernel)
    }
}
