//! [`Fingerprint`]: the environment a run measured in, so that figures from different machines are never
//! compared silently, and the [`Build`] of the harness that measured (a debug build's figures are not a release
//! build's).

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
    /// The build of the harness that measured (unknown in records written before it was recorded).
    #[serde(default)]
    pub build: Build,
}

/// Which build of the harness this is: version, git commit, cargo profile and optimization level.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Build {
    /// Crate version.
    pub version: String,
    /// Git commit it was built from ("unknown" outside a git checkout).
    pub commit: String,
    /// Cargo profile directory: `debug` (dev), `release`, or a custom profile's name.
    pub profile: String,
    /// The profile's optimization level (`0`-`3`, `s`, `z`).
    pub opt_level: String,
}

impl Default for Build {
    /// A build nothing is known about (records from before builds were recorded).
    fn default() -> Build {
        let unknown = || "unknown".to_string();
        Build { version: unknown(), commit: unknown(), profile: unknown(), opt_level: unknown() }
    }
}

impl Build {
    /// This build.
    pub fn current() -> Build {
        Build {
            version: env!("CARGO_PKG_VERSION").into(),
            commit: env!("HARNESS_GIT_COMMIT").into(),
            profile: env!("HARNESS_BUILD_PROFILE").into(),
            opt_level: env!("HARNESS_OPT_LEVEL").into(),
        }
    }
}

impl std::fmt::Display for Build {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "harness {} ({}, {} build, opt-level {})", self.version, self.commit, self.profile, self.opt_level)
    }
}

impl Fingerprint {
    /// The current machine.
    pub fn current() -> Fingerprint {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        let cpu = read("/proc/cpuinfo")
            .lines()
            .find_map(|l| l.strip_prefix("model name").map(|r| r.trim_start_matches([' ', '\t', ':']).to_string()))
            .unwrap_or_else(|| "unknown".into());
        let memory_mib = meminfo_bytes("MemTotal").map_or(0, |b| b / 1_048_576);
        Fingerprint {
            host: read("/proc/sys/kernel/hostname").trim().to_string(),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_mib,
            cpu,
            kernel: read("/proc/sys/kernel/osrelease").trim().to_string(),
            harness: env!("CARGO_PKG_VERSION").to_string(),
            build: Build::current(),
        }
    }

    /// The harness and its build, for reports ("harness 0.1.0" alone when the build was not recorded).
    pub fn harness_build(&self) -> String {
        if self.build == Build::default() {
            format!("harness {}", self.harness)
        } else {
            self.build.to_string()
        }
    }

    /// The part of the fingerprint that decides whether two runs are comparable (not the host name, not the
    /// commit: comparing commits is what a baseline is for; the build profile and optimization level, since a
    /// debug build measures itself as much as the platform).
    pub fn comparable_key(&self) -> String {
        format!(
            "{}|{}|{}|{}|build={}/opt-level={}",
            self.cores,
            self.memory_mib / 1024,
            self.cpu,
            self.kernel,
            self.build.profile,
            self.build.opt_level
        )
    }
}

/// A field of `/proc/meminfo` (`MemTotal`, `MemAvailable`) in bytes; `None` when it cannot be read.
pub fn meminfo_bytes(field: &str) -> Option<u64> {
    std::fs::read_to_string("/proc/meminfo").ok()?.lines().find_map(|l| {
        let kb = l.strip_prefix(field)?.strip_prefix(':')?.split_whitespace().next()?.parse::<u64>().ok()?;
        Some(kb * 1024)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_build_is_recorded_and_part_of_what_makes_runs_comparable() {
        let here = Fingerprint::current();
        assert_eq!(here.build, Build::current());
        assert_eq!(here.build.version, env!("CARGO_PKG_VERSION"));
        assert!(!here.build.profile.is_empty() && here.build.profile != "unknown", "{}", here.build);
        let expected = if cfg!(debug_assertions) { "debug" } else { "release" };
        // A custom profile inherits one of the two; the test profile of `cargo test` is dev's `debug` dir.
        if ["debug", "release"].contains(&here.build.profile.as_str()) {
            assert_eq!(here.build.profile, expected);
        }
        let mut other = here.clone();
        other.build.profile = "release-other".into();
        assert_ne!(here.comparable_key(), other.comparable_key());
        let mut next_commit = here.clone();
        next_commit.build.commit = "0123456789ab".into();
        assert_eq!(here.comparable_key(), next_commit.comparable_key());
    }

    #[test]
    fn a_record_from_before_builds_were_recorded_reads_as_an_unknown_build() {
        let mut v = serde_json::to_value(Fingerprint::current()).unwrap();
        v.as_object_mut().unwrap().remove("build");
        let old: Fingerprint = serde_json::from_value(v).unwrap();
        assert_eq!(old.build, Build::default());
        assert_ne!(old.comparable_key(), Fingerprint::current().comparable_key());
    }
}
