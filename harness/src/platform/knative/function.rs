//! [`Function`]: a function under test, addressed by name as a Knative Service or as the operator's
//! `LambdaFunction` (which owns a Knative Service), and [`Revision`], what its serving revision declares
//! (autoscaling annotations, container concurrency, container resources).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ResourceRequirements;
use kube::{
    api::{Api, DynamicObject, Patch, PatchParams},
    ResourceExt,
};
use serde_json::{json, Value};

use super::{
    connect::Cluster,
    error::{Error, Result},
    units,
};

/// Knative's autoscaling annotation keys.
pub mod annotation {
    /// Lowest pod count (`0` allows scale to zero).
    pub const MIN_SCALE: &str = "autoscaling.knative.dev/min-scale";
    /// The older spelling Knative still accepts for [`MIN_SCALE`].
    pub const MIN_SCALE_OLD: &str = "autoscaling.knative.dev/minScale";
    /// Highest pod count.
    pub const MAX_SCALE: &str = "autoscaling.knative.dev/max-scale";
    /// The older spelling Knative still accepts for [`MAX_SCALE`].
    pub const MAX_SCALE_OLD: &str = "autoscaling.knative.dev/maxScale";
    /// Soft concurrency (or rps) target per pod.
    pub const TARGET: &str = "autoscaling.knative.dev/target";
    /// Stable window of the autoscaler (a Go duration).
    pub const WINDOW: &str = "autoscaling.knative.dev/window";
    /// Label carrying the revision on pods and deployments.
    pub const REVISION_LABEL: &str = "serving.knative.dev/revision";
}

/// How the function was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A Knative Service of that name.
    Service,
    /// A `LambdaFunction` of that name (the Service is the one it reports).
    LambdaFunction,
}

/// A function under test and its Knative Service.
#[derive(Debug, Clone)]
pub struct Function {
    /// The name it was asked for by.
    pub name: String,
    /// How it was found.
    pub source: Source,
    /// Its Knative Service.
    pub service: DynamicObject,
    /// The `LambdaFunction`, when it was addressed as one.
    pub lambda: Option<DynamicObject>,
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(k)).and_then(Value::as_str)
}

impl Function {
    /// Finds `name` as a Knative Service, else as a `LambdaFunction` whose status names its Service.
    pub async fn resolve(c: &Cluster, name: &str) -> Result<Function> {
        let services: Api<DynamicObject> = Api::namespaced_with(c.client.clone(), &c.namespace, &c.apis.service);
        let get_service = |n: String| {
            let services = services.clone();
            async move {
                services
                    .get_opt(&n)
                    .await
                    .map_err(Error::api(format!("get {} {n} in namespace {}", c.apis.service.plural, c.namespace)))
            }
        };
        if let Some(service) = get_service(name.to_string()).await? {
            return Ok(Function { name: name.into(), source: Source::Service, service, lambda: None });
        }
        let lambdas: Api<DynamicObject> = Api::namespaced_with(c.client.clone(), &c.namespace, &c.apis.lambda);
        let lambda = match lambdas.get_opt(name).await {
            Ok(l) => l,
            Err(kube::Error::Api(s)) if s.code == 404 => None,
            Err(e) => return Err(Error::api(format!("get {} {name}", c.apis.lambda.plural))(e)),
        };
        let not_found =
            |detail: String| Error::NoFunction { name: name.into(), namespace: c.namespace.clone(), detail };
        let Some(lambda) = lambda else {
            return Err(not_found(format!(
                "no Knative Service ({}) and no {} ({}) of that name; deploy it (scripts/kind/deploy-fixture.sh) or pass the right --namespace",
                c.apis.service.api_version, c.apis.lambda.kind, c.apis.lambda.api_version
            )));
        };
        let svc_name = str_at(&lambda.data, &["status", "serviceStatus", "serviceName"]).unwrap_or(name).to_string();
        let Some(service) = get_service(svc_name.clone()).await? else {
            let phase = str_at(&lambda.data, &["status", "phase"]).unwrap_or("unknown");
            return Err(not_found(format!(
                "{} is in phase {phase} and its Knative Service {svc_name} does not exist yet",
                c.apis.lambda.kind
            )));
        };
        Ok(Function { name: name.into(), source: Source::LambdaFunction, service, lambda: Some(lambda) })
    }

    /// The Knative Service's name.
    pub fn service_name(&self) -> String {
        self.service.name_any()
    }

    /// `status.url` of the Service (the route's external URL).
    pub fn url(&self) -> Option<&str> {
        str_at(&self.service.data, &["status", "url"])
    }

    /// `status.latestReadyRevisionName`, or an error saying the Service is not ready.
    pub fn ready_revision(&self) -> Result<String> {
        str_at(&self.service.data, &["status", "latestReadyRevisionName"]).map(str::to_string).ok_or_else(|| {
            Error::Shape(format!(
                "Knative Service {} has no ready revision (status.latestReadyRevisionName missing)",
                self.service_name()
            ))
        })
    }

    /// An annotation of the Service's revision template.
    pub fn template_annotation(&self, key: &str) -> Option<&str> {
        str_at(&self.service.data, &["spec", "template", "metadata", "annotations", key])
    }

    /// The min-scale annotation key the template uses (the old spelling if that is the one set) and its value.
    pub fn template_min_scale(&self) -> (&'static str, Option<String>) {
        match self.template_annotation(annotation::MIN_SCALE_OLD) {
            Some(v) if self.template_annotation(annotation::MIN_SCALE).is_none() => {
                (annotation::MIN_SCALE_OLD, Some(v.to_string()))
            }
            _ => (annotation::MIN_SCALE, self.template_annotation(annotation::MIN_SCALE).map(str::to_string)),
        }
    }

    /// Sets (or with `None` removes) a revision-template annotation of the Service; Knative creates a new
    /// revision for it.
    pub async fn set_template_annotation(&self, c: &Cluster, key: &str, value: Option<&str>) -> Result<()> {
        let services: Api<DynamicObject> = Api::namespaced_with(c.client.clone(), &c.namespace, &c.apis.service);
        let patch = json!({ "spec": { "template": { "metadata": { "annotations": { key: value } } } } });
        services
            .patch(&self.service_name(), &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(Error::api(format!("patch annotation {key} of Knative Service {}", self.service_name())))?;
        Ok(())
    }
}

/// What a revision declares.
#[derive(Debug, Clone, PartialEq)]
pub struct Revision {
    /// Revision name.
    pub name: String,
    /// Its annotations.
    pub annotations: BTreeMap<String, String>,
    /// `spec.containerConcurrency` (0 or absent: unlimited).
    pub container_concurrency: Option<u64>,
    /// Containers (name, resources) of its pod spec.
    pub containers: Vec<(String, ResourceRequirements)>,
}

impl Revision {
    /// Reads revision `name`.
    pub async fn get(c: &Cluster, name: &str) -> Result<Revision> {
        let api: Api<DynamicObject> = Api::namespaced_with(c.client.clone(), &c.namespace, &c.apis.revision);
        let obj = api.get(name).await.map_err(Error::api(format!("get {} {name}", c.apis.revision.plural)))?;
        Revision::from_object(&obj)
    }

    /// Reads the fields of a Revision object.
    pub fn from_object(obj: &DynamicObject) -> Result<Revision> {
        let spec = obj.data.get("spec").cloned().unwrap_or(Value::Null);
        let containers = spec
            .get("containers")
            .and_then(Value::as_array)
            .map(|cs| {
                cs.iter()
                    .map(|c| {
                        let name = c.get("name").and_then(Value::as_str).unwrap_or("user-container").to_string();
                        let res = c.get("resources").cloned().map(serde_json::from_value).transpose();
                        res.map(|r| (name.clone(), r.unwrap_or_default())).map_err(|e| {
                            Error::Shape(format!("revision {}: container {name}: resources: {e}", obj.name_any()))
                        })
                    })
                    .collect::<Result<Vec<_>>>()
            })
            .transpose()?
            .unwrap_or_default();
        Ok(Revision {
            name: obj.name_any(),
            annotations: obj.annotations().clone(),
            container_concurrency: spec.get("containerConcurrency").and_then(Value::as_u64).filter(|&v| v > 0),
            containers,
        })
    }

    /// An integer annotation (`min-scale`, `max-scale`, `target`).
    pub fn int_annotation(&self, key: &str) -> Option<u64> {
        self.annotations.get(key).and_then(|v| v.trim().parse::<f64>().ok()).filter(|v| *v >= 0.0).map(|v| v as u64)
    }

    /// The revision's min-scale (0 when unset).
    pub fn min_scale(&self) -> u64 {
        self.int_annotation(annotation::MIN_SCALE)
            .or_else(|| self.int_annotation(annotation::MIN_SCALE_OLD))
            .unwrap_or(0)
    }

    /// The revision's max-scale, if set (0 means unlimited).
    pub fn max_scale(&self) -> Option<u64> {
        self.int_annotation(annotation::MAX_SCALE)
            .or_else(|| self.int_annotation(annotation::MAX_SCALE_OLD))
            .filter(|&m| m > 0)
    }

    /// The stable window the revision declares, if it does.
    pub fn window(&self) -> Option<std::time::Duration> {
        self.annotations.get(annotation::WINDOW).and_then(|w| units::go_duration(w))
    }

    /// Label selector of the revision's pods and deployment.
    pub fn selector(&self) -> String {
        format!("{}={}", annotation::REVISION_LABEL, self.name)
    }

    /// The user container's resources: the one named `user-container`, else the first.
    pub fn user_container(&self) -> Option<&(String, ResourceRequirements)> {
        self.containers.iter().find(|(n, _)| n == "user-container").or_else(|| self.containers.first())
    }
}

/// Reads the stable window from Knative's `config-autoscaler` ConfigMap, if readable.
pub async fn cluster_stable_window(c: &Cluster) -> Option<std::time::Duration> {
    let cms: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(c.client.clone(), "knative-serving");
    let cm = cms.get_opt("config-autoscaler").await.ok().flatten()?;
    cm.data?.get("stable-window").and_then(|w| units::go_duration(w))
}
