//! [`Docker`]: the few Docker Engine API calls the platform needs (create, start, wait, remove, list by
//! label, ping), spoken over the engine's unix socket with blocking I/O, so the same client also works in
//! `Drop` while a panic unwinds; async callers use it from `spawn_blocking`.

use std::{
    collections::BTreeMap,
    io::{Read, Write},
    os::unix::net::UnixStream,
    path::{Path, PathBuf},
    time::Duration,
};

use serde_json::{json, Value};

use super::Error;

/// A Docker engine reached through its unix socket.
#[derive(Debug, Clone)]
pub(crate) struct Docker {
    socket: PathBuf,
}

/// Container labels.
pub(crate) type Labels = BTreeMap<String, String>;

/// What a container of an execution environment is made of.
#[derive(Debug, Clone)]
pub(crate) struct ContainerSpec {
    pub name: String,
    pub image: String,
    pub env: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub memory_bytes: u64,
    pub nano_cpus: u64,
}

impl Docker {
    /// The engine at `socket`, else `DOCKER_HOST` when it is a unix socket, else `/var/run/docker.sock`.
    pub fn new(socket: Option<PathBuf>) -> Docker {
        let socket = socket.unwrap_or_else(|| match std::env::var("DOCKER_HOST") {
            Ok(h) if h.starts_with("unix://") => PathBuf::from(&h["unix://".len()..]),
            _ => PathBuf::from("/var/run/docker.sock"),
        });
        Docker { socket }
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Whether the engine answers; the error says how to get one.
    pub fn ping(&self) -> Result<(), Error> {
        let unavailable =
            |reason: String| Error::EngineUnavailable { socket: self.socket.display().to_string(), reason };
        match self.request("GET", "/_ping", None, Some(Duration::from_secs(3))) {
            Ok((200, _)) => Ok(()),
            Ok((s, body)) => Err(unavailable(format!("`GET /_ping` answered {s}: {}", String::from_utf8_lossy(&body)))),
            Err(Error::Engine { message, .. }) => Err(unavailable(message)),
            Err(e) => Err(unavailable(e.to_string())),
        }
    }

    /// Creates a container on the host network (so it reaches the Runtime API on loopback); returns its id.
    pub fn create(&self, c: &ContainerSpec) -> Result<String, Error> {
        let body = json!({
            "Image": c.image,
            "Env": c.env,
            "Labels": c.labels,
            "HostConfig": {
                "Memory": c.memory_bytes,
                "MemorySwap": c.memory_bytes,
                "NanoCpus": c.nano_cpus,
                "NetworkMode": "host",
            },
        });
        let path = format!("/containers/create?name={}", encode(&c.name));
        let v = self.json("POST", &path, Some(&body), &[201])?;
        v["Id"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| Error::Engine { call: format!("POST {path}"), message: format!("no Id in {v}") })
    }

    pub fn start(&self, id: &str) -> Result<(), Error> {
        self.json("POST", &format!("/containers/{id}/start"), None, &[204, 304]).map(|_| ())
    }

    /// When the container's process started (`State.StartedAt` of `GET /containers/{id}/json`).
    pub fn started_at(&self, id: &str) -> Result<std::time::SystemTime, Error> {
        let path = format!("/containers/{id}/json");
        let v = self.json("GET", &path, None, &[200])?;
        let raw = v["State"]["StartedAt"].as_str().unwrap_or_default();
        chrono::DateTime::parse_from_rfc3339(raw).map(std::time::SystemTime::from).map_err(|e| Error::Engine {
            call: format!("GET {path}"),
            message: format!("State.StartedAt {raw:?}: {e}"),
        })
    }

    /// The host pid of the container's first process (`State.Pid`; `None` once it has exited).
    pub fn pid(&self, id: &str) -> Result<Option<u32>, Error> {
        let v = self.json("GET", &format!("/containers/{id}/json"), None, &[200])?;
        Ok(v["State"]["Pid"].as_u64().filter(|p| *p > 0).and_then(|p| u32::try_from(p).ok()))
    }

    /// Blocks until the container stops; its exit code.
    pub fn wait(&self, id: &str) -> Result<i64, Error> {
        let v = self.json("POST", &format!("/containers/{id}/wait"), None, &[200])?;
        Ok(v["StatusCode"].as_i64().unwrap_or(-1))
    }

    /// Removes a container, killing it if it runs; a container already gone is fine.
    pub fn remove(&self, id: &str) -> Result<(), Error> {
        self.json("DELETE", &format!("/containers/{id}?force=true&v=true"), None, &[204, 404]).map(|_| ())
    }

    /// Containers (running or not) carrying `label` (`key` or `key=value`): id and labels.
    pub fn list(&self, label: &str) -> Result<Vec<(String, Labels)>, Error> {
        let filters = json!({ "label": [label] }).to_string();
        let v = self.json("GET", &format!("/containers/json?all=true&filters={}", encode(&filters)), None, &[200])?;
        Ok(v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|c| {
                        let id = c["Id"].as_str()?.to_string();
                        let labels = c["Labels"]
                            .as_object()
                            .map(|m| {
                                m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())).collect()
                            })
                            .unwrap_or_default();
                        Some((id, labels))
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    pub fn image_exists(&self, image: &str) -> Result<bool, Error> {
        let (status, _) =
            self.request("GET", &format!("/images/{}/json", encode(image)), None, Some(Duration::from_secs(10)))?;
        Ok(status == 200)
    }

    fn json(&self, method: &str, path: &str, body: Option<&Value>, ok: &[u16]) -> Result<Value, Error> {
        let timeout = if path.ends_with("/wait") { None } else { Some(Duration::from_secs(60)) };
        let (status, bytes) = self.request(method, path, body, timeout)?;
        if !ok.contains(&status) {
            let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let message = v["message"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned());
            return Err(Error::Engine { call: format!("{method} {path}"), message: format!("{status}: {message}") });
        }
        Ok(serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        timeout: Option<Duration>,
    ) -> Result<(u16, Vec<u8>), Error> {
        let call = || format!("{method} {path}");
        let fail =
            |e: std::io::Error| Error::Engine { call: call(), message: format!("{} ({e})", self.socket.display()) };
        let mut s = UnixStream::connect(&self.socket).map_err(fail)?;
        s.set_read_timeout(timeout).map_err(fail)?;
        s.set_write_timeout(Some(Duration::from_secs(30))).map_err(fail)?;
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: docker\r\nConnection: close\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).map_err(fail)?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).map_err(fail)?;
        parse_response(&raw).ok_or_else(|| Error::Engine { call: call(), message: "malformed HTTP response".into() })
    }
}

/// Status and de-chunked body of a complete HTTP/1.1 response.
fn parse_response(raw: &[u8]) -> Option<(u16, Vec<u8>)> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let status: u16 = head.split_whitespace().nth(1)?.parse().ok()?;
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let mut body = &raw[end + 4..];
    if !chunked {
        return Some((status, body.to_vec()));
    }
    let mut out = Vec::new();
    loop {
        let nl = body.windows(2).position(|w| w == b"\r\n")?;
        let size = usize::from_str_radix(std::str::from_utf8(&body[..nl]).ok()?.split(';').next()?.trim(), 16).ok()?;
        if size == 0 {
            return Some((status, out));
        }
        let start = nl + 2;
        out.extend_from_slice(body.get(start..start + size)?);
        body = body.get(start + size + 2..)?;
    }
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Peak memory of a container's cgroup in bytes (cgroup v1 `memory.max_usage_in_bytes`, v2 `memory.peak`).
pub(crate) fn cgroup_peak_bytes(id: &str) -> Option<u64> {
    let candidates = [
        format!("/sys/fs/cgroup/memory/docker/{id}/memory.max_usage_in_bytes"),
        format!("/sys/fs/cgroup/memory/system.slice/docker-{id}.scope/memory.max_usage_in_bytes"),
        format!("/sys/fs/cgroup/system.slice/docker-{id}.scope/memory.peak"),
        format!("/sys/fs/cgroup/docker/{id}/memory.peak"),
    ];
    candidates.iter().find_map(|p| std::fs::read_to_string(p).ok()?.trim().parse().ok())
}

/// CPU time a container's cgroup used (cgroup v1 `cpuacct.usage` in ns, v2 `cpu.stat` `usage_usec`).
pub(crate) fn cgroup_cpu_time(id: &str) -> Option<std::time::Duration> {
    let v1 = [
        format!("/sys/fs/cgroup/cpuacct/docker/{id}/cpuacct.usage"),
        format!("/sys/fs/cgroup/cpu,cpuacct/docker/{id}/cpuacct.usage"),
        format!("/sys/fs/cgroup/cpuacct/system.slice/docker-{id}.scope/cpuacct.usage"),
        format!("/sys/fs/cgroup/cpu,cpuacct/system.slice/docker-{id}.scope/cpuacct.usage"),
    ];
    if let Some(ns) = v1.iter().find_map(|p| std::fs::read_to_string(p).ok()?.trim().parse::<u64>().ok()) {
        return Some(std::time::Duration::from_nanos(ns));
    }
    let v2 = [
        format!("/sys/fs/cgroup/system.slice/docker-{id}.scope/cpu.stat"),
        format!("/sys/fs/cgroup/docker/{id}/cpu.stat"),
    ];
    v2.iter().find_map(|p| {
        let text = std::fs::read_to_string(p).ok()?;
        let us = text.lines().find_map(|l| l.strip_prefix("usage_usec ")?.trim().parse::<u64>().ok())?;
        Some(std::time::Duration::from_micros(us))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_and_plain_responses_are_parsed() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n[1,\r\n2\r\n2]\r\n0\r\n\r\n";
        assert_eq!(parse_response(raw), Some((200, b"[1,2]".to_vec())));
        let raw = b"HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\n{}";
        assert_eq!(parse_response(raw), Some((404, b"{}".to_vec())));
        assert_eq!(parse_response(b"garbage"), None);
    }

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(encode("{\"label\":[\"a=b\"]}"), "%7B%22label%22%3A%5B%22a%3Db%22%5D%7D");
    }

    #[test]
    fn missing_engine_names_the_socket_and_how_to_install() {
        let e = Docker::new(Some("/nonexistent/docker.sock".into())).ping().unwrap_err().to_string();
        assert!(e.contains("/nonexistent/docker.sock") && e.contains("apt-get install docker.io"), "{e}");
    }
}
