//! `image` on the local target: the size of the function's container image as the Docker engine reports it
//! (`docker image inspect`): the Rust fixture's image for `fixture: rust`, the named tag for `image:`, the
//! `FROM scratch` wrapper the platform builds for `binary:`. Without an engine no image exists (process
//! mode runs the binary): the metric is Missing with that reason rather than a binary size passed off as an
//! image size.

use std::process::Command;

use super::{local_session::function_spec, local_session::P, Error, MeasurementSet, Metric};
use crate::{
    criteria::Params,
    local::{fixtures, Source},
    platform::LocalConfig,
};

/// Runs the procedure. Params: `function`.
pub async fn run(params: &Params, cfg: &LocalConfig) -> Result<MeasurementSet, Error> {
    let p = P { procedure: "image", params };
    let function = p.str("function", "fixture-rust")?;
    let spec = function_spec(cfg, &function)?;
    let mut set = MeasurementSet::new("image", "local", params);
    let engine = Command::new("docker").args(["version", "--format", "{{.Server.Version}}"]).output();
    let engine_ok = matches!(&engine, Ok(o) if o.status.success());
    if !engine_ok {
        let reason = "no Docker engine answers: the local platform runs functions as processes (process mode), no container image exists to measure";
        set.notes.push(reason.into());
        return Ok(set.with("size", Metric::Missing { reason: reason.into() }).finish());
    }
    let tag = match &spec.source {
        Source::Fixture(f) if f == "rust" => tokio::task::spawn_blocking(fixtures::rust_fixture_image)
            .await
            .map_err(|e| Error::Failed(format!("build task: {e}")))?
            .map_err(|e| Error::Unavailable { what: "the Rust fixture image".into(), detail: e.to_string() })?,
        Source::Fixture(f) => {
            return Err(Error::Unavailable {
                what: format!("fixture `{f}` of function `{function}`"),
                detail: "the local target builds only the rust fixture".into(),
            })
        }
        Source::Image(i) => i.clone(),
        Source::Binary(b) => {
            let reason = format!("function `{function}` runs binary {} (the platform wraps it in a scratch image per run); name an `image:` or `fixture:` function to measure an image", b.display());
            return Ok(set.with("size", Metric::Missing { reason }).finish());
        }
    };
    let out = Command::new("docker")
        .args(["image", "inspect", "--format", "{{.Size}}", &tag])
        .output()
        .map_err(|e| Error::Unavailable { what: "the docker CLI".into(), detail: e.to_string() })?;
    if !out.status.success() {
        return Err(Error::Unavailable {
            what: format!("image {tag}"),
            detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    let size: f64 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .map_err(|e| Error::Failed(format!("docker image inspect {tag}: size not a number: {e}")))?;
    set.notes.push(format!("image {tag} of function `{function}`: {size} bytes (docker image inspect .Size)"));
    Ok(set.with("size", Metric::value(size, "B", 1)).finish())
}
