//! [`AmClient`]: the Alertmanager API v2, to read back which alerts reached Alertmanager.

use std::{collections::BTreeMap, time::Duration};

use bytes::Bytes;
use hyper::Method;
use serde::Deserialize;

use super::{
    http::{Endpoint, HttpClient},
    Error,
};

/// An alert held by Alertmanager.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct AmAlert {
    /// Labels (`alertname` included).
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// When it started (RFC 3339).
    #[serde(rename = "startsAt")]
    pub starts_at: String,
    /// When it ends or ended (RFC 3339).
    #[serde(rename = "endsAt")]
    pub ends_at: String,
    /// Its state in Alertmanager.
    pub status: AmStatus,
}

/// The state of an alert in Alertmanager.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct AmStatus {
    /// `active`, `suppressed` or `unprocessed`.
    pub state: String,
}

impl AmAlert {
    /// The `alertname` label.
    pub fn name(&self) -> &str {
        self.labels.get("alertname").map_or("", String::as_str)
    }
}

/// An Alertmanager's API.
#[derive(Debug, Clone)]
pub struct AmClient {
    endpoint: Endpoint,
    http: HttpClient,
}

impl AmClient {
    /// A client for the Alertmanager at `endpoint`.
    pub fn new(endpoint: Endpoint) -> AmClient {
        AmClient { endpoint, http: HttpClient::new(Duration::from_secs(10)) }
    }

    /// The server's base URL.
    pub fn url(&self) -> &str {
        &self.endpoint.url
    }

    /// Alerts Alertmanager holds (active, silenced and inhibited ones included).
    pub async fn alerts(&self) -> Result<Vec<AmAlert>, Error> {
        let url = self.endpoint.join("/api/v2/alerts");
        let r = self.http.send_ok(Method::GET, &url, &self.endpoint.auth, None, Bytes::new(), "").await?;
        serde_json::from_slice(&r.body).map_err(|e| Error::Decode { url, query: String::new(), detail: e.to_string() })
    }

    /// `GET /-/ready` answered 200.
    pub async fn ready(&self) -> Result<(), Error> {
        self.http
            .send_ok(Method::GET, &self.endpoint.join("/-/ready"), &self.endpoint.auth, None, Bytes::new(), "")
            .await
            .map(drop)
    }
}
