//! [`Postgres`]: a throwaway PostgreSQL cluster (`initdb` into a temp dir, `postgres` on a free loopback
//! port, a per-run SCRAM password, `pg_stat_statements` preloaded) seeded with the SecureBase data set:
//! `usage_metrics` and `invoices` with the guide's indexes, queried with the guide's query shapes.

use std::{
    ffi::OsString,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use serde::Serialize;
use tokio_postgres::{Client, NoTls};

use super::{error::io, Error};
use crate::services::{
    process::{free_port, server_dir, ServerProcess},
    wait,
};

/// The guide's usage-metrics query ("After: Index scan"), the date range in days as `$2`.
pub const METRICS_QUERY: &str = "SELECT metric_name, value, timestamp FROM usage_metrics WHERE customer_id = $1 \
     AND timestamp > NOW() - make_interval(days => $2) ORDER BY timestamp DESC LIMIT 100";
/// The invoices of a customer, newest first (served by `idx_invoices_customer_date`).
pub const INVOICES_QUERY: &str =
    "SELECT invoice_id, amount_cents, invoice_date FROM invoices WHERE customer_id = $1 ORDER BY invoice_date DESC LIMIT 12";

/// Size of the seeded data set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Seed {
    /// Customers (`cust0000`...).
    pub customers: u32,
    /// Rows of `usage_metrics`.
    pub metric_rows: u64,
    /// Invoices per customer.
    pub invoices_per_customer: u32,
    /// Whether the guide's indexes are created (false: the missing-index fault).
    pub indexes: bool,
}

impl Default for Seed {
    fn default() -> Self {
        Seed { customers: 500, metric_rows: 2_000_000, invoices_per_customer: 24, indexes: true }
    }
}

/// A running throwaway cluster; stopped and removed on drop.
#[derive(Debug)]
pub struct Postgres {
    process: ServerProcess,
    addr: String,
    user: String,
    password: String,
}

const DB_USER: &str = "securebase";

/// The directory holding `initdb` and `postgres`: `HARNESS_POSTGRES_BINDIR`, else the newest
/// `/usr/lib/postgresql/<version>/bin` of Debian's `postgresql` package.
pub fn bindir() -> Result<PathBuf, Error> {
    let missing = || {
        Error::Service(crate::services::Error::MissingBinary {
            program: "postgres (and initdb)".into(),
            package: "postgresql postgresql-contrib".into(),
            env: "HARNESS_POSTGRES_BINDIR".into(),
        })
    };
    if let Some(d) = std::env::var_os("HARNESS_POSTGRES_BINDIR") {
        let d = PathBuf::from(d);
        return if d.join("postgres").is_file() { Ok(d) } else { Err(missing()) };
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|_| missing())?
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, b): &(u32, PathBuf)| b.join("postgres").is_file() && b.join("initdb").is_file())
        .collect();
    found.sort();
    found.pop().map(|(_, b)| b).ok_or_else(missing)
}

/// The uid and gid to run the cluster as: none when not root; the `postgres` system user when root
/// (PostgreSQL refuses to run as root).
fn run_as() -> Result<Option<(u32, u32)>, Error> {
    if !rustix::process::geteuid().is_root() {
        return Ok(None);
    }
    let passwd = std::fs::read_to_string("/etc/passwd").map_err(|e| io(Path::new("/etc/passwd"), e))?;
    passwd
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() > 3 && f[0] == "postgres").then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))?
        })
        .map(Some)
        .ok_or_else(|| Error::Tool {
            program: "initdb".into(),
            detail: "running as root and no `postgres` user exists (PostgreSQL refuses to run as root): install the \
                     Debian package postgresql, which creates it"
                .into(),
        })
}

impl Postgres {
    /// Creates and starts the cluster with `password`, waiting until it accepts a connection.
    pub async fn start(password: &str, deadline: Duration) -> Result<Postgres, Error> {
        let bin = bindir()?;
        let user = run_as()?;
        let dir = server_dir("postgres")?;
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).map_err(|e| io(dir.path(), e))?;
        }
        let pwfile = dir.path().join("pwfile");
        std::fs::write(&pwfile, password).map_err(|e| io(&pwfile, e))?;
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(&pwfile, Some(uid), Some(gid)).map_err(|e| io(&pwfile, e))?;
        }
        let data = dir.path().join("data");
        let initdb = bin.join("initdb");
        let mut cmd = Command::new(&initdb);
        cmd.arg("-D").arg(&data).arg("-U").arg(DB_USER).arg(format!("--pwfile={}", pwfile.display()));
        cmd.args(["--auth=scram-sha-256", "-E", "UTF8", "--no-sync", "--no-instructions"]);
        if let Some((uid, gid)) = user {
            use std::os::unix::process::CommandExt;
            cmd.uid(uid).gid(gid);
        }
        let out =
            cmd.output().map_err(|e| Error::Tool { program: initdb.display().to_string(), detail: e.to_string() })?;
        let _ = std::fs::remove_file(&pwfile);
        if !out.status.success() {
            return Err(Error::Tool {
                program: initdb.display().to_string(),
                detail: format!("{}: {}", out.status, String::from_utf8_lossy(&out.stderr).trim()),
            });
        }
        let port = free_port()?;
        let socket_dir = dir.path().to_path_buf();
        let args: Vec<OsString> = [
            "-D".into(),
            data.into_os_string(),
            "-p".into(),
            port.to_string().into(),
            "-k".into(),
            socket_dir.into_os_string(),
            "-c".into(),
            "listen_addresses=127.0.0.1".into(),
            "-c".into(),
            "shared_preload_libraries=pg_stat_statements".into(),
            "-c".into(),
            "pg_stat_statements.track=top".into(),
            "-c".into(),
            "fsync=off".into(),
        ]
        .to_vec();
        let mut process = ServerProcess::spawn_program("postgres", &bin.join("postgres"), &args, dir, user)?;
        let addr = format!("127.0.0.1:{port}");
        let what = format!("postgres to accept connections at {addr} (log {})", process.log_path().display());
        wait::until(&what, deadline, Duration::from_millis(100), || {
            let exited = process.check_running();
            let addr = addr.clone();
            async move {
                exited?;
                Ok(connect_to(&addr, DB_USER, password).await.map(|_| ()).map_err(|e| e.to_string()))
            }
        })
        .await?;
        Ok(Postgres { process, addr, user: DB_USER.into(), password: password.into() })
    }

    /// `host:port`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The server process.
    pub fn process(&self) -> &ServerProcess {
        &self.process
    }

    /// A new connection (its driver runs on a spawned task until the client is dropped).
    pub async fn connect(&self) -> Result<Client, Error> {
        connect_to(&self.addr, &self.user, &self.password).await
    }

    /// Creates the schema and the seeded data set, then resets `pg_stat_statements` so that it holds only
    /// what runs afterwards.
    pub async fn seed(&self, seed: &Seed) -> Result<(), Error> {
        let c = self.connect().await?;
        let mut script = format!(
            "CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
             CREATE TABLE usage_metrics (id bigserial PRIMARY KEY, customer_id text NOT NULL,
                 metric_name text NOT NULL, value double precision NOT NULL, timestamp timestamptz NOT NULL);
             INSERT INTO usage_metrics (customer_id, metric_name, value, timestamp)
                 SELECT 'cust' || lpad((i % {c})::text, 4, '0'),
                        (ARRAY['api_calls','storage_gb','compute_s','egress_gb'])[1 + i % 4],
                        (i::bigint * 7919 % 10000) / 100.0,
                        NOW() - ((i / {c}) % 129600) * interval '1 minute'
                 FROM generate_series(1, {rows}) AS i;
             CREATE TABLE invoices (invoice_id bigserial PRIMARY KEY, customer_id text NOT NULL,
                 amount_cents bigint NOT NULL, invoice_date date NOT NULL);
             INSERT INTO invoices (customer_id, amount_cents, invoice_date)
                 SELECT 'cust' || lpad(c::text, 4, '0'), 10000 + (c * 31 + m) % 90000, CURRENT_DATE - m * 30
                 FROM generate_series(0, {c} - 1) AS c, generate_series(0, {inv} - 1) AS m;",
            c = seed.customers.max(1),
            rows = seed.metric_rows,
            inv = seed.invoices_per_customer,
        );
        if seed.indexes {
            script.push_str(
                "CREATE INDEX idx_invoices_customer_date ON invoices (customer_id, invoice_date DESC);
                 CREATE INDEX idx_metrics_customer_timestamp ON usage_metrics (customer_id, timestamp DESC);",
            );
        }
        script.push_str("ANALYZE usage_metrics; ANALYZE invoices; SELECT pg_stat_statements_reset();");
        c.batch_execute(&script).await.map_err(|e| self.err("seeding the data set", e))
    }

    fn err(&self, what: &str, e: tokio_postgres::Error) -> Error {
        Error::Postgres { addr: self.addr.clone(), what: what.into(), detail: error_chain(&e) }
    }

    /// Every `pg_stat_statements` row of this database, slowest mean first.
    pub async fn statement_stats(&self) -> Result<Vec<StatementStats>, Error> {
        let c = self.connect().await?;
        let q = "SELECT query, calls, mean_exec_time, stddev_exec_time, min_exec_time, max_exec_time, rows \
                 FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) \
                 ORDER BY mean_exec_time DESC";
        let rows = c.query(q, &[]).await.map_err(|e| self.err("reading pg_stat_statements", e))?;
        Ok(rows
            .iter()
            .map(|r| StatementStats {
                query: r.get(0),
                calls: r.get::<_, i64>(1).max(0) as u64,
                mean_ms: r.get(2),
                stddev_ms: r.get(3),
                min_ms: r.get(4),
                max_ms: r.get(5),
                rows: r.get::<_, i64>(6).max(0) as u64,
            })
            .collect())
    }
}

/// One `pg_stat_statements` row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatementStats {
    /// Normalized statement text.
    pub query: String,
    /// Executions.
    pub calls: u64,
    /// `mean_exec_time`, ms.
    pub mean_ms: f64,
    /// `stddev_exec_time`, ms.
    pub stddev_ms: f64,
    /// `min_exec_time`, ms.
    pub min_ms: f64,
    /// `max_exec_time`, ms.
    pub max_ms: f64,
    /// Rows returned in total.
    pub rows: u64,
}

/// The rows of `stats` whose statement is one of `statements`, compared with whitespace collapsed and the
/// trailing `LIMIT` left out (pg_stat_statements shows the statement's constants as `$n`).
pub fn of_statements(stats: &[StatementStats], statements: &[&str]) -> Vec<StatementStats> {
    let norm = |s: &str| {
        let words: Vec<&str> = s.split_whitespace().collect();
        let n = words.len();
        let end = if n >= 2 && words[n - 2].eq_ignore_ascii_case("LIMIT") { n - 2 } else { n };
        words[..end].join(" ")
    };
    let wanted: Vec<String> = statements.iter().map(|s| norm(s)).collect();
    stats.iter().filter(|s| wanted.contains(&norm(&s.query))).cloned().collect()
}

/// The mean execution time over all calls of `stats` (each statement weighted by its calls) and the calls;
/// `None` when nothing ran.
pub fn weighted_mean(stats: &[StatementStats]) -> Option<(f64, u64)> {
    let calls: u64 = stats.iter().map(|s| s.calls).sum();
    (calls > 0).then(|| (stats.iter().map(|s| s.mean_ms * s.calls as f64).sum::<f64>() / calls as f64, calls))
}

fn error_chain(e: &tokio_postgres::Error) -> String {
    match std::error::Error::source(e) {
        Some(s) => format!("{e}: {s}"),
        None => e.to_string(),
    }
}

async fn connect_to(addr: &str, user: &str, password: &str) -> Result<Client, Error> {
    let (host, port) = addr.rsplit_once(':').unwrap_or((addr, "5432"));
    let mut cfg = tokio_postgres::Config::new();
    cfg.host(host).port(port.parse().unwrap_or(5432)).user(user).password(password).dbname("postgres");
    cfg.connect_timeout(Duration::from_secs(5));
    let (client, conn) = cfg.connect(NoTls).await.map_err(|e| Error::Postgres {
        addr: addr.into(),
        what: "connect".into(),
        detail: error_chain(&e),
    })?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weighted_mean_weights_by_calls_and_refuses_nothing() {
        let s = |calls, mean_ms| StatementStats {
            query: "q".into(),
            calls,
            mean_ms,
            stddev_ms: 0.0,
            min_ms: 0.0,
            max_ms: 0.0,
            rows: 0,
        };
        assert_eq!(weighted_mean(&[s(3, 10.0), s(1, 50.0)]), Some((20.0, 4)));
        assert_eq!(weighted_mean(&[s(0, 10.0)]), None);
        assert_eq!(weighted_mean(&[]), None);
    }

    #[test]
    fn the_api_statements_are_found_with_their_constants_normalized() {
        let row = |q: &str| StatementStats {
            query: q.into(),
            calls: 1,
            mean_ms: 1.0,
            stddev_ms: 0.0,
            min_ms: 0.0,
            max_ms: 0.0,
            rows: 0,
        };
        let all = [
            row(&INVOICES_QUERY.replace("LIMIT 12", "LIMIT $2")),
            row("SELECT pg_stat_statements_reset()"),
            row("SELECT invoice_id FROM invoices"),
        ];
        let found = of_statements(&all, &[METRICS_QUERY, INVOICES_QUERY]);
        assert_eq!(found.len(), 1);
        assert!(found[0].query.starts_with("SELECT invoice_id, amount_cents"));
    }
}
