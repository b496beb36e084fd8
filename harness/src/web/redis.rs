//! [`Redis`]: a Debian `redis-server` on a free loopback port with a per-run password and no persistence,
//! and [`RedisConn`], the few RESP commands the portal needs (`AUTH`, `GET`, `SETEX`, `INFO`,
//! `CONFIG RESETSTAT`), spoken over one TCP connection.

use std::{ffi::OsString, time::Duration};

use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::TcpStream,
};

use super::{error::io, Error};
use crate::services::{
    process::{free_port, server_dir, Binary, ServerProcess},
    wait,
};

/// redis-server.
pub const REDIS_SERVER: Binary = Binary { program: "redis-server", package: "redis-server" };

/// A running redis-server; stopped on drop.
#[derive(Debug)]
pub struct Redis {
    process: ServerProcess,
    addr: String,
    password: String,
}

impl Redis {
    /// Starts redis-server with `password` and waits until it answers `PING`.
    pub async fn start(password: &str, deadline: Duration) -> Result<Redis, Error> {
        let dir = server_dir("redis")?;
        let port = free_port()?;
        let conf = dir.path().join("redis.conf");
        let text = format!(
            "bind 127.0.0.1\nport {port}\nrequirepass {password}\nsave \"\"\nappendonly no\ndir {}\n\
             protected-mode yes\ndaemonize no\nlogfile \"\"\n",
            dir.path().display()
        );
        std::fs::write(&conf, text).map_err(|e| io(&conf, e))?;
        let args: Vec<OsString> = vec![conf.into()];
        let mut process = ServerProcess::spawn("redis", &REDIS_SERVER, &args, dir)?;
        let addr = format!("127.0.0.1:{port}");
        let what = format!("redis-server to answer PING at {addr} (log {})", process.log_path().display());
        wait::until(&what, deadline, Duration::from_millis(50), || {
            let exited = process.check_running();
            let addr = addr.clone();
            async move {
                exited?;
                Ok(match RedisConn::connect(&addr, password).await {
                    Ok(mut c) => c.command(&["PING"]).await.map(|_| ()).map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                })
            }
        })
        .await?;
        Ok(Redis { process, addr, password: password.into() })
    }

    /// `host:port`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// A new authenticated connection.
    pub async fn connect(&self) -> Result<RedisConn, Error> {
        RedisConn::connect(&self.addr, &self.password).await
    }

    /// The server process.
    pub fn process(&self) -> &ServerProcess {
        &self.process
    }
}

/// A RESP reply.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `+OK`.
    Simple(String),
    /// `:1`.
    Int(i64),
    /// `$n` bulk string, `None` for the null bulk string.
    Bulk(Option<Vec<u8>>),
    /// `*n`.
    Array(Vec<Reply>),
}

/// One authenticated connection to Redis.
#[derive(Debug)]
pub struct RedisConn {
    addr: String,
    stream: BufReader<TcpStream>,
}

impl RedisConn {
    /// Connects to `addr` and authenticates with `password`.
    pub async fn connect(addr: &str, password: &str) -> Result<RedisConn, Error> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| Error::Redis { addr: addr.into(), detail: format!("connect: {e}") })?;
        stream.set_nodelay(true).ok();
        let mut c = RedisConn { addr: addr.into(), stream: BufReader::new(stream) };
        c.command(&["AUTH", password]).await?;
        Ok(c)
    }

    fn err(&self, detail: impl std::fmt::Display) -> Error {
        Error::Redis { addr: self.addr.clone(), detail: detail.to_string() }
    }

    /// Sends one command and reads its reply; an error reply is an error naming the command.
    pub async fn command(&mut self, args: &[&str]) -> Result<Reply, Error> {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        let name = args.first().copied().unwrap_or_default();
        self.stream.get_mut().write_all(&out).await.map_err(|e| self.err(format!("{name}: {e}")))?;
        self.read_reply().await.map_err(|e| match e {
            Error::Redis { addr, detail } => Error::Redis { addr, detail: format!("{name}: {detail}") },
            other => other,
        })
    }

    async fn line(&mut self) -> Result<String, Error> {
        let mut line = String::new();
        let n = self.stream.read_line(&mut line).await.map_err(|e| self.err(e))?;
        if n == 0 {
            return Err(self.err("connection closed"));
        }
        Ok(line.trim_end_matches(['\r', '\n']).to_string())
    }

    async fn read_reply(&mut self) -> Result<Reply, Error> {
        let mut stack: Vec<(usize, Vec<Reply>)> = Vec::new();
        loop {
            let line = self.line().await?;
            let (kind, rest) = line.split_at(1.min(line.len()));
            let int = |s: &str| s.parse::<i64>().map_err(|_| self.err(format!("malformed reply `{line}`")));
            let reply = match kind {
                "+" => Reply::Simple(rest.into()),
                "-" => return Err(self.err(rest)),
                ":" => Reply::Int(int(rest)?),
                "$" => match int(rest)? {
                    n if n < 0 => Reply::Bulk(None),
                    n => {
                        let mut buf = vec![0u8; n as usize + 2];
                        self.stream.read_exact(&mut buf).await.map_err(|e| self.err(e))?;
                        buf.truncate(n as usize);
                        Reply::Bulk(Some(buf))
                    }
                },
                "*" => {
                    let n = int(rest)?.max(0) as usize;
                    if n > 0 {
                        stack.push((n, Vec::with_capacity(n)));
                        continue;
                    }
                    Reply::Array(Vec::new())
                }
                _ => return Err(self.err(format!("unexpected reply `{line}`"))),
            };
            let mut done = reply;
            loop {
                match stack.last_mut() {
                    None => return Ok(done),
                    Some((n, items)) => {
                        items.push(done);
                        if items.len() < *n {
                            break;
                        }
                        let (_, items) = stack.pop().expect("non-empty");
                        done = Reply::Array(items);
                    }
                }
            }
        }
    }

    /// `GET key`.
    pub async fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        match self.command(&["GET", key]).await? {
            Reply::Bulk(v) => Ok(v),
            other => Err(self.err(format!("GET {key}: unexpected reply {other:?}"))),
        }
    }

    /// `SETEX key ttl value`.
    pub async fn setex(&mut self, key: &str, ttl_s: u64, value: &str) -> Result<(), Error> {
        self.command(&["SETEX", key, &ttl_s.to_string(), value]).await.map(|_| ())
    }

    /// `INFO section` as text.
    pub async fn info(&mut self, section: &str) -> Result<String, Error> {
        match self.command(&["INFO", section]).await? {
            Reply::Bulk(Some(b)) => Ok(String::from_utf8_lossy(&b).into_owned()),
            other => Err(self.err(format!("INFO {section}: unexpected reply {other:?}"))),
        }
    }
}

/// `keyspace_hits` and `keyspace_misses` of an `INFO stats` text; `None` when either is absent.
pub fn keyspace(info: &str) -> Option<(u64, u64)> {
    let field = |name: &str| {
        info.lines().find_map(|l| l.trim().strip_prefix(name)?.strip_prefix(':')?.trim().parse::<u64>().ok())
    };
    Some((field("keyspace_hits")?, field("keyspace_misses")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyspace_reads_hits_and_misses_and_refuses_a_partial_info() {
        let info = "# Stats\r\ntotal_connections_received:3\r\nkeyspace_hits:42\r\nkeyspace_misses:7\r\n";
        assert_eq!(keyspace(info), Some((42, 7)));
        assert_eq!(keyspace("# Stats\r\nkeyspace_hits:42\r\n"), None);
        assert_eq!(keyspace("keyspace_hits_x:1\r\nkeyspace_misses:2\r\n"), None);
    }
}
