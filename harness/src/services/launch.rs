//! [`launch`]: start a server on a free loopback port and wait until its `/-/ready` answers, restarting on
//! another port when the one picked was taken in the meantime.

use std::{ffi::OsString, path::Path, time::Duration};

use super::{
    process::{free_port, server_dir, Binary, ServerProcess},
    wait, Error,
};
use crate::metrics::{Endpoint, HttpClient};

/// A started, ready server.
#[derive(Debug)]
pub struct Launched {
    /// The process (stopped on drop).
    pub process: ServerProcess,
    /// Its base URL and credentials.
    pub endpoint: Endpoint,
}

const ATTEMPTS: usize = 3;

/// Starts `binary` as server `name`: `prepare(dir, listen_address)` writes its configuration into a fresh
/// temp dir and returns its arguments; then waits up to `deadline` for `GET /-/ready` with `endpoint_auth`.
pub async fn launch<F>(
    name: &str,
    binary: &Binary,
    endpoint_auth: crate::metrics::Auth,
    deadline: Duration,
    prepare: F,
) -> Result<Launched, Error>
where
    F: Fn(&Path, &str) -> Result<Vec<OsString>, Error>,
{
    binary.locate()?;
    let http = HttpClient::new(Duration::from_secs(2));
    let mut last_err = None;
    for _ in 0..ATTEMPTS {
        let dir = server_dir(name)?;
        let port = free_port()?;
        let listen = format!("127.0.0.1:{port}");
        let args = prepare(dir.path(), &listen)?;
        let mut process = ServerProcess::spawn(name, binary, &args, dir)?;
        let endpoint = Endpoint::new(&format!("http://{listen}"), endpoint_auth.clone());
        let ready_url = endpoint.join("/-/ready");
        let what = format!("{name} to be ready at {ready_url} (log {})", process.log_path().display());
        let result = wait::until(&what, deadline, Duration::from_millis(50), || {
            let exited = process.check_running();
            let http = &http;
            let ready_url = &ready_url;
            let auth = &endpoint.auth;
            async move {
                exited?;
                Ok(match http.get(ready_url, auth).await {
                    Ok(r) if r.status == 200 => Ok(()),
                    Ok(r) => Err(format!("HTTP {} {}", r.status, r.text().trim())),
                    Err(e) => Err(e.to_string()),
                })
            }
        })
        .await;
        match result {
            Ok(()) => return Ok(Launched { process, endpoint }),
            Err(Error::Exited { log, .. }) if log.contains("address already in use") => {
                tracing::info!("{name}: port {port} was taken, retrying on another");
                last_err = Some(Error::Exited { name: name.into(), status: "port taken".into(), log });
            }
            Err(e) => return Err(e),
        }
    }
    Err(last_err.expect("at least one attempt"))
}
