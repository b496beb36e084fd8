//! API Gateway as the rate-limit checks read it: [`StageThrottling`] (the stage's method throttling from
//! GetStage, the usage plan's from GetUsagePlan, and whether that plan covers the stage) and the API key the
//! load generator sends, resolved from the outputs' reference without ever printing it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{error::classify, AwsTarget, Error};
use crate::terraform::{Secret, SecretRef};

/// A rate and burst limit (either may be unset).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Throttle {
    /// Steady-state requests per second.
    pub rate_limit: Option<f64>,
    /// Burst (bucket size).
    pub burst_limit: Option<i32>,
}

impl Throttle {
    /// True when both limits are set and positive.
    pub fn is_set(&self) -> bool {
        self.rate_limit.is_some_and(|r| r > 0.0) && self.burst_limit.is_some_and(|b| b > 0)
    }
}

/// Throttling in force on the stage the outputs name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageThrottling {
    /// Stage name.
    pub stage: String,
    /// Method settings by `resource/method` path (`*/*` is the stage default).
    pub methods: BTreeMap<String, Throttle>,
    /// The usage plan's throttle.
    pub usage_plan: Option<Throttle>,
    /// Whether the usage plan lists this API and stage.
    pub usage_plan_covers_stage: bool,
}

impl StageThrottling {
    /// The stage-wide default (`*/*`), if set.
    pub fn stage_default(&self) -> Option<Throttle> {
        self.methods.get("*/*").copied()
    }

    /// The limit a client with the API key meets: the lower of the stage default and the usage plan.
    pub fn effective(&self) -> Option<Throttle> {
        let plan = self.usage_plan.filter(|_| self.usage_plan_covers_stage);
        let min_f = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(x), Some(y)) => Some(x.min(y)),
            (x, y) => x.or(y),
        };
        let min_i = |a: Option<i32>, b: Option<i32>| match (a, b) {
            (Some(x), Some(y)) => Some(x.min(y)),
            (x, y) => x.or(y),
        };
        match (self.stage_default(), plan) {
            (None, None) => None,
            (s, p) => Some(Throttle {
                rate_limit: min_f(s.and_then(|t| t.rate_limit), p.and_then(|t| t.rate_limit)),
                burst_limit: min_i(s.and_then(|t| t.burst_limit), p.and_then(|t| t.burst_limit)),
            }),
        }
    }
}

impl AwsTarget {
    /// The stage's throttling (GetStage) and the usage plan's (GetUsagePlan).
    pub async fn stage_throttling(&self) -> Result<StageThrottling, Error> {
        let s = &self.settings;
        let stage =
            self.apigateway.get_stage().rest_api_id(&s.api_id).stage_name(&s.api_stage).send().await.map_err(|e| {
                classify(&self.ctx("API Gateway", "GetStage", &format!("stage {} of API {}", s.api_stage, s.api_id)), e)
            })?;
        let methods = stage
            .method_settings()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            Throttle {
                                rate_limit: Some(v.throttling_rate_limit()),
                                burst_limit: Some(v.throttling_burst_limit()),
                            },
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let plan = self.apigateway.get_usage_plan().usage_plan_id(&s.usage_plan_id).send().await.map_err(|e| {
            classify(&self.ctx("API Gateway", "GetUsagePlan", &format!("usage plan {}", s.usage_plan_id)), e)
        })?;
        Ok(StageThrottling {
            stage: s.api_stage.clone(),
            methods,
            usage_plan: plan
                .throttle()
                .map(|t| Throttle { rate_limit: Some(t.rate_limit()), burst_limit: Some(t.burst_limit()) }),
            usage_plan_covers_stage: plan
                .api_stages()
                .iter()
                .any(|a| a.api_id() == Some(&s.api_id) && a.stage() == Some(&s.api_stage)),
        })
    }

    /// The API key the outputs refer to.
    pub async fn api_key(&self) -> Result<Secret, Error> {
        match &self.settings.api_key {
            SecretRef::Value(v) => Ok(v.clone()),
            SecretRef::Env(var) => std::env::var(var).map(Secret::new).map_err(|_| Error::Response {
                what: "the API key".into(),
                detail: format!("the outputs' api_key_secret names the environment variable {var}, which is not set"),
            }),
            SecretRef::ApiGatewayKey(id) => {
                let r = self
                    .apigateway
                    .get_api_key()
                    .api_key(id)
                    .include_value(true)
                    .send()
                    .await
                    .map_err(|e| classify(&self.ctx("API Gateway", "GetApiKey", &format!("API key {id}")), e))?;
                r.value().map(Secret::new).ok_or_else(|| Error::Response {
                    what: format!("API key {id}"),
                    detail: "GetApiKey(includeValue) returned no value: the role needs apigateway:GET on /apikeys"
                        .into(),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_effective_limit_is_the_lower_of_stage_and_plan() {
        let t = |r: f64, b: i32| Throttle { rate_limit: Some(r), burst_limit: Some(b) };
        let mut s = StageThrottling {
            stage: "perf".into(),
            methods: [("*/*".to_string(), t(100.0, 200))].into(),
            usage_plan: Some(t(50.0, 500)),
            usage_plan_covers_stage: true,
        };
        assert_eq!(s.effective(), Some(t(50.0, 200)));
        s.usage_plan_covers_stage = false;
        assert_eq!(s.effective(), Some(t(100.0, 200)));
        s.methods.clear();
        assert_eq!(s.effective(), None);
        assert!(!Throttle { rate_limit: Some(0.0), burst_limit: Some(1) }.is_set());
    }
}
