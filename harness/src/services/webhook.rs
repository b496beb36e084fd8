//! [`WebhookReceiver`]: the suite's Alertmanager webhook receiver, a small HTTP server on a loopback port
//! that records every notification with the moment it arrived, so that the time from a regression to its
//! alert can be measured where an operator would see it.

use std::{
    collections::BTreeMap,
    convert::Infallible,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http_body_util::{BodyExt, Full};
use hyper::{body::Incoming, service::service_fn, Request, Response};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use tokio::{net::TcpListener, task::JoinHandle};

use super::{wait, Error};

/// One alert of a notification.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct NotifiedAlert {
    /// `firing` or `resolved`.
    pub status: String,
    /// Labels (`alertname` included).
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// Start (RFC 3339).
    #[serde(rename = "startsAt")]
    pub starts_at: String,
}

#[derive(Debug, Deserialize)]
struct Payload {
    status: String,
    receiver: String,
    alerts: Vec<NotifiedAlert>,
}

/// A notification as received.
#[derive(Debug, Clone)]
pub struct Notification {
    /// When it arrived (monotonic clock).
    pub at: Instant,
    /// When it arrived (wall clock).
    pub received: DateTime<Utc>,
    /// Group status: `firing` or `resolved`.
    pub status: String,
    /// Receiver name.
    pub receiver: String,
    /// The alerts.
    pub alerts: Vec<NotifiedAlert>,
}

type Store = Arc<Mutex<Vec<Notification>>>;

/// The receiver; stops serving on drop.
#[derive(Debug)]
pub struct WebhookReceiver {
    url: String,
    store: Store,
    task: JoinHandle<()>,
}

impl WebhookReceiver {
    /// Starts listening on a free loopback port (needs a tokio runtime).
    pub async fn start() -> Result<WebhookReceiver, Error> {
        let listener = TcpListener::bind("127.0.0.1:0").await.map_err(|e| Error::io("127.0.0.1:0".as_ref(), e))?;
        let addr = listener.local_addr().map_err(|e| Error::io("127.0.0.1:0".as_ref(), e))?;
        let store: Store = Arc::default();
        let s = store.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let s = s.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| handle(req, s.clone()));
                    let _ =
                        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
                });
            }
        });
        Ok(WebhookReceiver { url: format!("http://{addr}/alerts"), store, task })
    }

    /// The URL to give Alertmanager.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Every notification so far.
    pub fn notifications(&self) -> Vec<Notification> {
        self.store.lock().expect("webhook store").clone()
    }

    /// Waits for the first notification received at or after `since` holding alert `alertname` with
    /// `status` (`firing` or `resolved`) and labels including `labels`.
    pub async fn wait_for(
        &self,
        alertname: &str,
        status: &str,
        labels: &BTreeMap<String, String>,
        since: Instant,
        deadline: Duration,
    ) -> Result<Notification, Error> {
        let what = format!("a {status} {alertname} notification at the webhook {}", self.url);
        wait::until(&what, deadline, Duration::from_millis(20), || async {
            let all = self.notifications();
            let found = all.iter().find(|n| {
                n.at >= since
                    && n.alerts.iter().any(|a| {
                        a.status == status
                            && a.labels.get("alertname").map(String::as_str) == Some(alertname)
                            && labels.iter().all(|(k, v)| a.labels.get(k) == Some(v))
                    })
            });
            Ok(match found {
                Some(n) => Ok(n.clone()),
                None => Err(summary(&all, since)),
            })
        })
        .await
    }
}

fn summary(all: &[Notification], since: Instant) -> String {
    let recent: Vec<String> = all
        .iter()
        .filter(|n| n.at >= since)
        .flat_map(|n| {
            n.alerts.iter().map(|a| format!("{} {}", a.labels.get("alertname").map_or("?", String::as_str), a.status))
        })
        .collect();
    if recent.is_empty() {
        format!("no notification since the wait began ({} before)", all.len())
    } else {
        format!("notifications: {}", recent.join(", "))
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(req: Request<Incoming>, store: Store) -> Result<Response<Full<Bytes>>, Infallible> {
    let at = Instant::now();
    let received = Utc::now();
    let reply = |code: u16, text: &str| {
        let mut r = Response::new(Full::new(Bytes::from(text.to_string())));
        *r.status_mut() = hyper::StatusCode::from_u16(code).expect("status");
        Ok(r)
    };
    if req.method() != hyper::Method::POST {
        return reply(405, "POST Alertmanager webhook notifications here\n");
    }
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return reply(400, &e.to_string()),
    };
    match serde_json::from_slice::<Payload>(&body) {
        Ok(p) => {
            store.lock().expect("webhook store").push(Notification {
                at,
                received,
                status: p.status,
                receiver: p.receiver,
                alerts: p.alerts,
            });
            reply(200, "ok\n")
        }
        Err(e) => reply(400, &format!("not an Alertmanager notification: {e}\n")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{Auth, HttpClient};

    #[tokio::test]
    async fn records_notifications_and_finds_the_awaited_one() {
        let w = WebhookReceiver::start().await.unwrap();
        let since = Instant::now();
        let http = HttpClient::default();
        let body = r#"{"version":"4","status":"firing","receiver":"suite","groupKey":"k","alerts":[
            {"status":"firing","labels":{"alertname":"PerformanceRegression","metric":"warm_start"},"annotations":{},"startsAt":"2026-01-01T00:00:00Z","endsAt":"0001-01-01T00:00:00Z"}]}"#;
        let r = http
            .send(hyper::Method::POST, w.url(), &Auth::None, Some("application/json"), Bytes::from(body), "")
            .await
            .unwrap();
        assert_eq!(r.status, 200);
        let bad = http.send(hyper::Method::POST, w.url(), &Auth::None, None, Bytes::from("{}"), "").await.unwrap();
        assert_eq!(bad.status, 400);
        let labels: BTreeMap<String, String> = [("metric".to_string(), "warm_start".to_string())].into();
        let n = w.wait_for("PerformanceRegression", "firing", &labels, since, Duration::from_secs(5)).await.unwrap();
        assert_eq!((n.receiver.as_str(), n.alerts.len()), ("suite", 1));
        assert_eq!(w.notifications().len(), 1);
        let e = w
            .wait_for("PerformanceRegression", "resolved", &labels, since, Duration::from_millis(200))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("PerformanceRegression firing"), "{e}");
    }
}
