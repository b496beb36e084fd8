//! [`Params`] access for the knative procedures: typed reads with defaults, and errors that name the
//! parameter and say what was expected.

use std::time::Duration;

use serde_json::Value;

use super::error::{Error, Result};
use crate::criteria::Params;

/// Typed view of a procedure's parameters.
#[derive(Debug, Clone, Copy)]
pub struct P<'a>(pub &'a Params);

fn wrong(param: &str, want: &str, got: &Value) -> Error {
    Error::Param { param: param.into(), problem: format!("expected {want}, got {got}") }
}

impl P<'_> {
    /// A string parameter, if present.
    pub fn opt_str(&self, key: &str) -> Result<Option<&str>> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(v) => Err(wrong(key, "a string", v)),
        }
    }

    /// A required string parameter.
    pub fn str(&self, key: &str) -> Result<&str> {
        self.opt_str(key)?.ok_or_else(|| Error::Param {
            param: key.into(),
            problem: "missing (the profile's defaults or params must set it)".into(),
        })
    }

    /// A non-negative number, `default` when absent.
    pub fn f64(&self, key: &str, default: f64) -> Result<f64> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(v) => {
                v.as_f64().filter(|x| x.is_finite() && *x >= 0.0).ok_or_else(|| wrong(key, "a non-negative number", v))
            }
        }
    }

    /// A count, `default` when absent.
    pub fn u64(&self, key: &str, default: u64) -> Result<u64> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(v) => v.as_u64().ok_or_else(|| wrong(key, "a non-negative integer", v)),
        }
    }

    /// A count that must be at least 1.
    pub fn count(&self, key: &str, default: u64) -> Result<u64> {
        match self.u64(key, default)? {
            0 => Err(Error::Param { param: key.into(), problem: "must be at least 1".into() }),
            n => Ok(n),
        }
    }

    /// A duration given in seconds, `default` when absent.
    pub fn secs(&self, key: &str, default: f64) -> Result<Duration> {
        Ok(Duration::from_secs_f64(self.f64(key, default)?))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn typed_reads_name_the_parameter() {
        let p: Params =
            [("function".to_string(), json!("f")), ("samples".to_string(), json!(3)), ("rate".to_string(), json!(-1))]
                .into();
        let p = P(&p);
        assert_eq!(p.str("function").unwrap(), "f");
        assert_eq!(p.count("samples", 30).unwrap(), 3);
        assert_eq!(p.count("spikes", 5).unwrap(), 5);
        assert_eq!(p.secs("spike_s", 2.5).unwrap(), Duration::from_millis(2500));
        assert!(p.str("missing").unwrap_err().to_string().contains("`missing`"));
        assert!(p.f64("rate", 1.0).unwrap_err().to_string().contains("non-negative"));
        assert!(p.u64("function", 1).unwrap_err().to_string().contains("`function`"));
    }
}
