//! [`Browser`]: headless Debian Chromium driven over the DevTools protocol (a websocket on loopback), and
//! [`Browser::load`], one page load read back from the page's own Navigation Timing entry. The protocol is
//! spoken directly over `tokio-tungstenite`: the maintained CDP crates carry the whole generated protocol
//! (a long build on two cores) for the five commands used here.

use std::{collections::VecDeque, ffi::OsString, path::PathBuf, time::Duration};

use futures::{SinkExt, StreamExt};
use serde::Serialize;
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::{tungstenite::Message, MaybeTlsStream, WebSocketStream};

use super::Error;
use crate::services::{
    process::{server_dir, Binary, ServerProcess},
    wait,
};

/// Debian's Chromium.
pub const CHROMIUM: Binary = Binary { program: "chromium", package: "chromium" };

/// Flags for this machine: headless, no sandbox (root in CI), and no background networking (a closed
/// network refuses those connections).
const FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-port=0",
    "--remote-debugging-address=127.0.0.1",
];

/// One page load's Navigation Timing, ms from the start of the navigation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NavigationTiming {
    /// Whether the browser's cache was cleared before the load.
    pub cold: bool,
    /// `responseStart`: the first byte of the document (TTFB).
    pub ttfb_ms: f64,
    /// `loadEventEnd`: the page and all its resources loaded.
    pub load_ms: f64,
    /// The whole entry, as the page reported it.
    pub entry: Value,
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A running headless Chromium with one page attached; stopped and its profile removed on drop.
#[derive(Debug)]
pub struct Browser {
    _process: ServerProcess,
    port: u16,
    ws: Ws,
    session: String,
    next_id: u64,
    events: VecDeque<Value>,
}

const STEP: Duration = Duration::from_secs(30);

impl Browser {
    /// Starts Chromium with a fresh profile and opens a page.
    pub async fn start() -> Result<Browser, Error> {
        let dir = server_dir("chromium")?;
        let profile: PathBuf = dir.path().join("profile");
        let mut args: Vec<OsString> = FLAGS.iter().map(OsString::from).collect();
        args.push(format!("--user-data-dir={}", profile.display()).into());
        args.push("about:blank".into());
        let mut process = ServerProcess::spawn("chromium", &CHROMIUM, &args, dir)?;
        let port_file = profile.join("DevToolsActivePort");
        let what = format!("chromium to write {} (log {})", port_file.display(), process.log_path().display());
        let (port, ws_url) = wait::until(&what, STEP, Duration::from_millis(50), || {
            let exited = process.check_running();
            let text = std::fs::read_to_string(&port_file).unwrap_or_default();
            async move {
                exited?;
                let mut lines = text.lines();
                Ok(match (lines.next(), lines.next()) {
                    (Some(port), Some(path)) if port.parse::<u16>().is_ok() => {
                        Ok((port.parse::<u16>().expect("checked"), format!("ws://127.0.0.1:{port}{path}")))
                    }
                    _ => Err("no DevToolsActivePort yet".to_string()),
                })
            }
        })
        .await?;
        let (ws, _) = tokio_tungstenite::connect_async(ws_url.as_str())
            .await
            .map_err(|e| Error::Browser(format!("connecting to {ws_url}: {e}")))?;
        let mut b =
            Browser { _process: process, port, ws, session: String::new(), next_id: 0, events: VecDeque::new() };
        let target = b.call("Target.createTarget", json!({ "url": "about:blank" }), false).await?;
        let target_id = target["targetId"].as_str().unwrap_or_default().to_string();
        let attached =
            b.call("Target.attachToTarget", json!({ "targetId": target_id, "flatten": true }), false).await?;
        b.session = attached["sessionId"]
            .as_str()
            .ok_or_else(|| Error::Browser(format!("Target.attachToTarget returned no sessionId: {attached}")))?
            .into();
        b.call("Page.enable", json!({}), true).await?;
        b.call("Network.enable", json!({}), true).await?;
        Ok(b)
    }

    /// The DevTools port (on 127.0.0.1), for other DevTools clients such as Lighthouse.
    pub fn port(&self) -> u16 {
        self.port
    }

    async fn call(&mut self, method: &str, params: Value, in_page: bool) -> Result<Value, Error> {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({ "id": id, "method": method, "params": params });
        if in_page {
            msg["sessionId"] = json!(self.session);
        }
        self.ws
            .send(Message::text(msg.to_string()))
            .await
            .map_err(|e| Error::Browser(format!("{method}: sending: {e}")))?;
        let deadline = tokio::time::Instant::now() + STEP;
        loop {
            let m = self.next_message(deadline, method).await?;
            if m["id"].as_u64() == Some(id) {
                if let Some(err) = m.get("error") {
                    return Err(Error::Browser(format!("{method}: {err}")));
                }
                return Ok(m["result"].clone());
            }
            if m.get("method").is_some() {
                self.events.push_back(m);
            }
        }
    }

    async fn next_message(&mut self, deadline: tokio::time::Instant, waiting_for: &str) -> Result<Value, Error> {
        loop {
            let next = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .map_err(|_| Error::Browser(format!("no answer to {waiting_for} within {STEP:?}")))?;
            match next {
                Some(Ok(Message::Text(t))) => {
                    return serde_json::from_str(&t)
                        .map_err(|e| Error::Browser(format!("{waiting_for}: unreadable message: {e}")))
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(Error::Browser(format!("{waiting_for}: {e}"))),
                None => return Err(Error::Browser(format!("{waiting_for}: the DevTools connection closed"))),
            }
        }
    }

    async fn wait_event(&mut self, method: &str) -> Result<Value, Error> {
        if let Some(i) = self.events.iter().position(|e| e["method"] == method) {
            return Ok(self.events.remove(i).expect("found"));
        }
        let deadline = tokio::time::Instant::now() + STEP;
        loop {
            let m = self.next_message(deadline, method).await?;
            if m["method"] == method {
                return Ok(m);
            }
        }
    }

    /// Loads `url` once (after clearing the browser's cache when `cold`) and returns its Navigation Timing.
    pub async fn load(&mut self, url: &str, cold: bool) -> Result<NavigationTiming, Error> {
        if cold {
            self.call("Network.clearBrowserCache", json!({}), true).await?;
        }
        self.events.clear();
        let nav = self.call("Page.navigate", json!({ "url": url }), true).await?;
        if let Some(e) = nav.get("errorText").and_then(Value::as_str) {
            return Err(Error::Http { url: url.into(), detail: format!("navigation failed: {e}") });
        }
        self.wait_event("Page.loadEventFired").await?;
        let expr = "new Promise(r => { const f = () => { const e = performance.getEntriesByType('navigation')[0]; \
                    if (e && e.loadEventEnd > 0) r(JSON.stringify(e.toJSON())); else setTimeout(f, 10); }; f(); })";
        let v = self
            .call("Runtime.evaluate", json!({ "expression": expr, "awaitPromise": true, "returnByValue": true }), true)
            .await?;
        let text = v["result"]["value"]
            .as_str()
            .ok_or_else(|| Error::Browser(format!("{url}: no navigation timing entry: {v}")))?;
        navigation_timing(text, cold).map_err(|e| Error::Browser(format!("{url}: {e}")))
    }
}

/// Reads a Navigation Timing entry (JSON); an entry without a positive `responseStart` and `loadEventEnd`
/// is an error.
pub fn navigation_timing(text: &str, cold: bool) -> Result<NavigationTiming, String> {
    let entry: Value = serde_json::from_str(text).map_err(|e| format!("unreadable navigation entry: {e}"))?;
    let field = |name: &str| entry[name].as_f64().filter(|v| *v > 0.0);
    let (Some(ttfb_ms), Some(load_ms)) = (field("responseStart"), field("loadEventEnd")) else {
        return Err(format!("navigation entry lacks responseStart or loadEventEnd: {text}"));
    };
    Ok(NavigationTiming { cold, ttfb_ms, load_ms, entry })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_navigation_entry_needs_its_first_byte_and_load_end() {
        let t = navigation_timing(r#"{"responseStart": 12.5, "loadEventEnd": 80.0, "name": "x"}"#, true).unwrap();
        assert_eq!((t.ttfb_ms, t.load_ms, t.cold), (12.5, 80.0, true));
        assert!(navigation_timing(r#"{"responseStart": 12.5, "loadEventEnd": 0}"#, false).is_err());
        assert!(navigation_timing("nope", false).is_err());
    }
}
