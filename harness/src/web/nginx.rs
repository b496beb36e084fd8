//! [`Nginx`]: Debian `nginx` in the CDN's role, a caching reverse proxy (`proxy_cache`) in front of the
//! portal's origin, honouring the origin's `Cache-Control`. Its access log records each request's cache
//! status (`$upstream_cache_status`), from which [`cache_statuses`] reads the hit rate.

use std::{ffi::OsString, path::PathBuf, time::Duration};

use serde::Deserialize;

use super::{error::io, Error};
use crate::{
    metrics::Auth,
    services::{launch::launch, process::Binary, process::ServerProcess},
};

/// nginx.
pub const NGINX: Binary = Binary { program: "nginx", package: "nginx" };

/// A running nginx; stopped on drop.
#[derive(Debug)]
pub struct Nginx {
    process: ServerProcess,
    url: String,
    access_log: PathBuf,
}

fn worker_user() -> Option<(String, u32, u32)> {
    if !rustix::process::geteuid().is_root() {
        return None;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    ["www-data", "nobody"].iter().find_map(|name| {
        passwd.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() > 3 && f[0] == *name).then(|| Some((name.to_string(), f[2].parse().ok()?, f[3].parse().ok()?)))?
        })
    })
}

/// The configuration: a cache zone in `dir`, the origin at `origin`, `proxy_cache` on or off.
pub fn config(dir: &std::path::Path, listen: &str, origin: &str, cache: bool, user: Option<&str>) -> String {
    let d = dir.display();
    let origin_host = origin.trim_start_matches("http://");
    let user = user.map(|u| format!("user {u};\n")).unwrap_or_default();
    let cache = if cache { "proxy_cache edge;" } else { "proxy_cache off;" };
    format!(
        r#"{user}daemon off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 512; }}
http {{
  log_format cdn escape=json '{{"msec":"$msec","uri":"$request_uri","status":"$status","cache":"$upstream_cache_status","request_time":"$request_time"}}';
  access_log {d}/access.log cdn;
  client_body_temp_path {d}/tmp/body;
  proxy_temp_path {d}/tmp/proxy;
  fastcgi_temp_path {d}/tmp/fastcgi;
  uwsgi_temp_path {d}/tmp/uwsgi;
  scgi_temp_path {d}/tmp/scgi;
  proxy_cache_path {d}/cache levels=1:2 keys_zone=edge:10m max_size=100m inactive=1h use_temp_path=off;
  upstream origin {{ server {origin_host}; keepalive 16; }}
  server {{
    listen {listen};
    location = /-/ready {{ access_log off; return 200 "ready\n"; }}
    location / {{
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      {cache}
      proxy_cache_key $scheme$proxy_host$request_uri;
      proxy_cache_lock on;
      add_header X-Cache-Status $upstream_cache_status always;
    }}
  }}
}}
"#
    )
}

impl Nginx {
    /// Starts nginx in front of `origin` (`http://host:port`), `proxy_cache` on unless `cache` is false.
    pub async fn start(origin: &str, cache: bool, deadline: Duration) -> Result<Nginx, Error> {
        let user = worker_user();
        let Launched { process, endpoint } = launch("nginx", &NGINX, Auth::None, deadline, |dir, listen| {
            use std::os::unix::fs::PermissionsExt;
            for sub in ["cache", "tmp"] {
                let p = dir.join(sub);
                std::fs::create_dir_all(&p).map_err(|e| crate::services::Error::io(&p, e))?;
                if let Some((_, uid, gid)) = &user {
                    std::os::unix::fs::chown(&p, Some(*uid), Some(*gid))
                        .map_err(|e| crate::services::Error::io(&p, e))?;
                }
            }
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o711))
                .map_err(|e| crate::services::Error::io(dir, e))?;
            let conf = dir.join("nginx.conf");
            let text = config(dir, listen, origin, cache, user.as_ref().map(|u| u.0.as_str()));
            std::fs::write(&conf, text).map_err(|e| crate::services::Error::io(&conf, e))?;
            Ok(vec![
                OsString::from("-p"),
                dir.as_os_str().to_owned(),
                "-c".into(),
                conf.into_os_string(),
                "-e".into(),
                dir.join("error.log").into_os_string(),
            ])
        })
        .await?;
        let access_log = process.dir().join("access.log");
        Ok(Nginx { process, url: endpoint.url, access_log })
    }

    /// Base URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The access log (one JSON object per request).
    pub fn access_log(&self) -> &std::path::Path {
        &self.access_log
    }

    /// The server process.
    pub fn process(&self) -> &ServerProcess {
        &self.process
    }

    /// The access log's entries once it holds at least `n` (nginx writes a line after the response has
    /// gone out), or what it holds after `deadline`.
    pub async fn entries_at_least(&self, n: usize, deadline: Duration) -> Result<Vec<LogEntry>, Error> {
        let start = tokio::time::Instant::now();
        loop {
            let entries = self.entries()?;
            if entries.len() >= n || start.elapsed() >= deadline {
                return Ok(entries);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The access log's entries so far.
    pub fn entries(&self) -> Result<Vec<LogEntry>, Error> {
        let text = std::fs::read_to_string(&self.access_log).map_err(|e| io(&self.access_log, e))?;
        cache_statuses(&text).map_err(|(line, detail)| Error::Http {
            url: format!("{}:{line}", self.access_log.display()),
            detail: format!("unreadable access log line: {detail}"),
        })
    }
}

use crate::services::launch::Launched;

/// One request as nginx logged it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct LogEntry {
    /// `$msec`.
    pub msec: String,
    /// `$request_uri`.
    pub uri: String,
    /// `$status`.
    pub status: String,
    /// `$upstream_cache_status`: HIT, MISS, EXPIRED, BYPASS, ...; empty when the cache is off.
    pub cache: String,
    /// `$request_time`, s.
    pub request_time: String,
}

/// Parses an access log; an unreadable line is `(line number, problem)`.
pub fn cache_statuses(text: &str) -> Result<Vec<LogEntry>, (usize, String)> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| serde_json::from_str(l).map_err(|e| (i + 1, e.to_string())))
        .collect()
}

/// Hits (`HIT`) and requests of `entries`.
pub fn hit_count(entries: &[LogEntry]) -> (u64, u64) {
    (entries.iter().filter(|e| e.cache == "HIT").count() as u64, entries.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_are_counted_per_logged_request_and_bad_lines_are_named() {
        let log = concat!(
            r#"{"msec":"1.0","uri":"/","status":"200","cache":"MISS","request_time":"0.002"}"#,
            "\n",
            r#"{"msec":"1.1","uri":"/","status":"200","cache":"HIT","request_time":"0.000"}"#,
            "\n",
            r#"{"msec":"1.2","uri":"/api/x","status":"200","cache":"","request_time":"0.001"}"#,
            "\n"
        );
        let e = cache_statuses(log).unwrap();
        assert_eq!(hit_count(&e), (1, 3));
        assert_eq!(cache_statuses("{}\nnot json\n").unwrap_err().0, 1);
    }

    #[test]
    fn the_cache_knob_turns_proxy_cache_off() {
        let d = std::path::Path::new("/tmp/x");
        assert!(config(d, "127.0.0.1:1", "http://127.0.0.1:2", true, None).contains("proxy_cache edge;"));
        let off = config(d, "127.0.0.1:1", "http://127.0.0.1:2", false, Some("www-data"));
        assert!(off.contains("proxy_cache off;") && off.starts_with("user www-data;"));
    }
}
