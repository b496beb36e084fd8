//! [`PortalStack`]: the SecureBase-shaped stack on this machine, every part a real server on a loopback
//! port with per-run credentials: Redis, a throwaway PostgreSQL cluster with the seeded data set, the
//! portal's [`Origin`] (page, assets, cache-aside API) and nginx in the CDN's role in front of it.
//! [`Knobs`] break it on purpose. Dropping the stack stops everything and removes its temp directories.

use std::time::Duration;

use super::{
    nginx::Nginx,
    origin::{Origin, OriginOptions},
    postgres::{Postgres, Seed},
    redis::Redis,
    Error,
};

/// Faults to inject; the default is the stack as built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Knobs {
    /// nginx `proxy_cache` on (false: the CDN caches nothing).
    pub cdn_cache: bool,
    /// Redis TTL for every key, s, instead of the guide's (0: nothing stays cached).
    pub redis_ttl_s: Option<u64>,
    /// The guide's indexes exist (false: the missing-index fault).
    pub indexes: bool,
    /// A path the origin serves only after this delay, uncacheable (the slow-asset fault).
    pub slow: Option<(String, Duration)>,
    /// The portal's script keeps the main thread busy this long, ms (the slow-script fault).
    pub script_busy_ms: Option<u64>,
    /// Rows of `usage_metrics`.
    pub metric_rows: u64,
}

impl Default for Knobs {
    fn default() -> Self {
        Knobs {
            cdn_cache: true,
            redis_ttl_s: None,
            indexes: true,
            slow: None,
            script_busy_ms: None,
            metric_rows: Seed::default().metric_rows,
        }
    }
}

/// The running stack. Fields drop in order: the proxy first, the databases last.
#[derive(Debug)]
pub struct PortalStack {
    /// The CDN.
    pub nginx: Nginx,
    /// The origin and its API.
    pub origin: Origin,
    /// The database.
    pub postgres: Postgres,
    /// The cache.
    pub redis: Redis,
    /// Redis' password, for connections of the procedure.
    redis_password: String,
}

const READY: Duration = Duration::from_secs(60);

fn secret() -> Result<String, Error> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| Error::Tool { program: "getrandom".into(), detail: e.to_string() })?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

impl PortalStack {
    /// Starts and seeds the stack with `knobs`.
    pub async fn start(knobs: &Knobs) -> Result<PortalStack, Error> {
        let redis_password = secret()?;
        let redis = Redis::start(&redis_password, READY).await?;
        let postgres = Postgres::start(&secret()?, READY).await?;
        let seed = Seed { metric_rows: knobs.metric_rows, indexes: knobs.indexes, ..Seed::default() };
        postgres.seed(&seed).await?;
        let mut db = Vec::new();
        for _ in 0..4 {
            db.push(postgres.connect().await?);
        }
        let mut opts = OriginOptions {
            slow: knobs.slow.clone(),
            script_busy_ms: knobs.script_busy_ms,
            ..OriginOptions::default()
        };
        if let Some(ttl) = knobs.redis_ttl_s {
            opts.metrics_ttl_s = ttl;
            opts.invoices_ttl_s = ttl;
        }
        let origin = Origin::start(opts, redis.addr(), &redis_password, db).await?;
        let nginx = Nginx::start(origin.url(), knobs.cdn_cache, READY).await?;
        Ok(PortalStack { nginx, origin, postgres, redis, redis_password })
    }

    /// Redis' password.
    pub fn redis_password(&self) -> &str {
        &self.redis_password
    }
}
