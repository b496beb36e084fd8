//! [`Alertmanager`]: an Alertmanager the suite starts from a configuration file (the shipped
//! `fixtures/prometheus/alertmanager.yml`), its webhook receivers pointed at the suite's own receiver,
//! clustering off, basic auth on its API; or one the user names.

use std::{ffi::OsString, path::PathBuf, time::Duration};

use serde_json::Value;

use super::{
    auth::WebAuth,
    launch::{launch, Launched},
    process::{ServerProcess, ALERTMANAGER},
    Error,
};
use crate::metrics::{AmClient, Auth, Endpoint};

/// How to start Alertmanager.
#[derive(Debug, Clone)]
pub struct AlertmanagerOptions {
    /// Configuration file (YAML).
    pub config: PathBuf,
    /// URL every webhook receiver of the file is pointed at (the suite's receiver).
    pub webhook_url: Option<String>,
    /// Require basic auth on Alertmanager's API with these credentials.
    pub web_auth: Option<WebAuth>,
    /// How long to wait for readiness.
    pub ready_timeout: Duration,
}

impl AlertmanagerOptions {
    /// Options for `config`, nothing else changed.
    pub fn new(config: PathBuf) -> AlertmanagerOptions {
        AlertmanagerOptions { config, webhook_url: None, web_auth: None, ready_timeout: Duration::from_secs(30) }
    }

    /// The configuration to run: the file's, with webhook URLs replaced.
    pub fn config(&self) -> Result<Value, Error> {
        let text = std::fs::read_to_string(&self.config).map_err(|e| Error::io(&self.config, e))?;
        let mut cfg: Value = serde_saphyr::from_str(&text)
            .map_err(|e| Error::Config { path: self.config.clone(), detail: e.to_string() })?;
        if let Some(url) = &self.webhook_url {
            let mut replaced = 0;
            for r in cfg["receivers"].as_array_mut().into_iter().flatten() {
                for w in r["webhook_configs"].as_array_mut().into_iter().flatten() {
                    w["url"] = Value::String(url.clone());
                    replaced += 1;
                }
            }
            if replaced == 0 {
                return Err(Error::Config {
                    path: self.config.clone(),
                    detail: "no receiver with webhook_configs: the suite cannot see alerts arrive".into(),
                });
            }
        }
        Ok(cfg)
    }
}

/// An Alertmanager: started by the suite (stopped on drop) or named by the user.
#[derive(Debug)]
pub struct Alertmanager {
    endpoint: Endpoint,
    process: Option<ServerProcess>,
}

impl Alertmanager {
    /// Starts Alertmanager with `opts` on a free loopback port and waits until it is ready.
    pub async fn start(opts: &AlertmanagerOptions) -> Result<Alertmanager, Error> {
        let cfg = opts.config()?;
        let auth = opts.web_auth.as_ref().map_or(Auth::None, WebAuth::auth);
        let Launched { process, endpoint } =
            launch("alertmanager", &ALERTMANAGER, auth, opts.ready_timeout, |dir, listen| {
                let path = dir.join("alertmanager.yml");
                std::fs::write(&path, serde_json::to_string_pretty(&cfg).expect("json"))
                    .map_err(|e| Error::io(&path, e))?;
                let mut args: Vec<OsString> = vec![
                    format!("--config.file={}", path.display()).into(),
                    format!("--storage.path={}", dir.join("data").display()).into(),
                    format!("--web.listen-address={listen}").into(),
                    // An empty address turns clustering off (no second port, no gossip delay).
                    "--cluster.listen-address=".into(),
                    "--log.level=info".into(),
                ];
                if let Some(w) = &opts.web_auth {
                    args.push(format!("--web.config.file={}", w.write_web_config(dir)?.display()).into());
                }
                Ok(args)
            })
            .await?;
        Ok(Alertmanager { endpoint, process: Some(process) })
    }

    /// An Alertmanager the user runs.
    pub fn external(endpoint: Endpoint) -> Alertmanager {
        Alertmanager { endpoint, process: None }
    }

    /// Base URL and credentials.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// An API client.
    pub fn client(&self) -> AmClient {
        AmClient::new(self.endpoint.clone())
    }

    /// The server process, when the suite started it.
    pub fn process(&self) -> Option<&ServerProcess> {
        self.process.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_urls_are_replaced_and_a_config_without_one_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("am.yml");
        std::fs::write(&p, "route:\n  receiver: suite\nreceivers:\n  - name: suite\n    webhook_configs:\n      - url: http://example.invalid/x\n").unwrap();
        let mut o = AlertmanagerOptions::new(p.clone());
        o.webhook_url = Some("http://127.0.0.1:1/alerts".into());
        assert_eq!(o.config().unwrap()["receivers"][0]["webhook_configs"][0]["url"], "http://127.0.0.1:1/alerts");
        std::fs::write(&p, "route:\n  receiver: n\nreceivers:\n  - name: n\n").unwrap();
        let e = o.config().unwrap_err().to_string();
        assert!(e.contains("am.yml") && e.contains("webhook"), "{e}");
        std::fs::write(&p, "route: [\n").unwrap();
        assert!(o.config().unwrap_err().to_string().contains("am.yml"));
    }
}
