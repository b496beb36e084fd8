//! [`until`]: poll a probe under a deadline with a description, so that a wait that fails says what it
//! awaited, for how long, and what it saw last.

use std::{future::Future, time::Duration};

use tokio::time::Instant;

use super::Error;

/// Polls `probe` every `every` until it returns `Ok(Ok(value))` or `deadline` passes. `Ok(Err(state))`
/// means "not yet" with a description of what is seen now; `Err(e)` ends the wait at once.
pub async fn until<T, F, Fut>(what: &str, deadline: Duration, every: Duration, mut probe: F) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Result<T, String>, Error>>,
{
    let start = Instant::now();
    let mut last = String::from("nothing yet");
    loop {
        let left = deadline.saturating_sub(start.elapsed());
        match tokio::time::timeout(left.max(Duration::from_millis(1)), probe()).await {
            Ok(Ok(Ok(v))) => return Ok(v),
            Ok(Ok(Err(state))) => last = state,
            Ok(Err(e)) => return Err(e),
            Err(_) => {}
        }
        if start.elapsed() >= deadline {
            return Err(Error::Timeout { what: what.into(), after: deadline, last });
        }
        tokio::time::sleep(every.min(deadline.saturating_sub(start.elapsed()))).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn returns_the_value_once_ready() {
        let mut n = 0;
        let v = until("n to reach 3", Duration::from_secs(10), Duration::from_millis(1), || {
            n += 1;
            let n = n;
            async move { Ok(if n >= 3 { Ok(n) } else { Err(format!("n={n}")) }) }
        })
        .await
        .unwrap();
        assert_eq!(v, 3);
    }

    #[tokio::test]
    async fn timeout_names_what_and_the_last_state() {
        let e =
            until::<(), _, _>("the alert to fire", Duration::from_millis(200), Duration::from_millis(20), || async {
                Ok(Err("state=pending".to_string()))
            })
            .await
            .unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("the alert to fire") && msg.contains("state=pending") && msg.contains("200ms"), "{msg}");
    }

    #[tokio::test]
    async fn a_fatal_probe_error_ends_the_wait() {
        let e = until::<(), _, _>("x", Duration::from_secs(60), Duration::from_millis(1), || async {
            Err(Error::Env { var: "V".into(), detail: "bad".into() })
        })
        .await
        .unwrap_err();
        assert!(matches!(e, Error::Env { .. }));
    }
}
