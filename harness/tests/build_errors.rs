//! The `build` procedure refuses to produce figures when what it needs is not there: a dead engine, a
//! CLI that does not exist, a Pushgateway that is down, a Dockerfile that does not build. Each gives an
//! error that names what was missing; none gives a measurement.

use std::path::Path;

use harness::{
    criteria::Params,
    image_build::{Docker, DockerOptions, OWNER_LABEL},
    measure::{self, Error},
    platform::{LocalConfig, Target},
    run_dir::RunDir,
};

fn params(v: serde_json::Value) -> Params {
    serde_json::from_value(v).unwrap()
}

fn run(p: Params) -> Result<measure::MeasurementSet, Error> {
    let tmp = tempfile::tempdir().unwrap();
    let dir = RunDir::open(tmp.path()).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(measure::run("build", &p, &Target::Local(LocalConfig::default()), &dir))
}

fn failing_fixture(dockerfile: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    for name in ["Dockerfile.baseline", "Dockerfile.optimized"] {
        std::fs::write(tmp.path().join(name), dockerfile).unwrap();
    }
    std::fs::write(tmp.path().join("app.py"), "def handler(event, context):\n    return event\n").unwrap();
    std::fs::write(tmp.path().join("requirements.txt"), "simplejson==4.3.0\n").unwrap();
    tmp
}

fn my_images() -> String {
    let owner = format!("{OWNER_LABEL}={}", harness::image_build::owner());
    let out = std::process::Command::new("docker")
        .args(["image", "ls", "-q", "--filter", &format!("label={owner}")])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn a_dead_engine_socket_is_named_in_the_error() {
    let sock = "unix:///tmp/perf-acceptance-no-such-engine.sock";
    let rt = tokio::runtime::Runtime::new().unwrap();
    let e =
        rt.block_on(Docker::connect(&DockerOptions { host: Some(sock.into()), cli: None })).unwrap_err().to_string();
    assert!(e.contains(sock) && e.contains("does not answer"), "{e}");
    match run(params(serde_json::json!({ "docker_host": sock }))) {
        Err(Error::Unavailable { what, detail }) => {
            assert!(
                what.contains("Docker engine") && what.contains(sock) && detail.contains("does not answer"),
                "{what}: {detail}"
            );
        }
        other => panic!("expected the engine to be unavailable, got {other:?}"),
    }
}

#[test]
fn a_missing_cli_is_named_in_the_error() {
    let e = run(params(serde_json::json!({ "docker_cli": "/nonexistent/bin/docker" }))).unwrap_err().to_string();
    assert!(e.contains("/nonexistent/bin/docker"), "{e}");
}

#[test]
fn a_pushgateway_that_is_down_stops_the_procedure_before_any_build() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}");
    match run(params(serde_json::json!({ "pushgateway": url }))) {
        Err(Error::Unavailable { what, detail }) => {
            assert!(
                what.contains("Pushgateway") && what.contains(&url) && detail.contains("cannot reach"),
                "{what}: {detail}"
            );
        }
        other => panic!("expected the Pushgateway to be unavailable, got {other:?}"),
    }
    assert_eq!(my_images(), "", "no image was built or left");
}

#[test]
fn a_dockerfile_whose_copy_fails_names_the_step() {
    let f = failing_fixture("FROM scratch\nCOPY missing.txt /\n");
    let e = run(params(serde_json::json!({ "fixture": f.path() }))).unwrap_err();
    let Error::Failed(msg) = &e else { panic!("expected a failed build, got {e:?}") };
    assert!(msg.contains("Dockerfile.") && msg.contains("COPY missing.txt /") && msg.contains("not found"), "{msg}");
    assert_eq!(my_images(), "", "the images of the run were removed");
}

#[test]
fn a_dockerfile_whose_run_fails_names_the_step_and_exit_code() {
    let f = failing_fixture("FROM perf-acceptance/debian-base:bookworm\nRUN echo preparing && exit 3\n");
    let e = run(params(serde_json::json!({ "fixture": f.path() }))).unwrap_err();
    let Error::Failed(msg) = &e else { panic!("expected a failed build, got {e:?}") };
    assert!(msg.contains("RUN echo preparing && exit 3") && msg.contains("exit code: 3"), "{msg}");
    let dockerfile = f.path().join("Dockerfile.");
    assert!(msg.contains(&*dockerfile.to_string_lossy()), "names the fixture's own Dockerfile: {msg}");
    assert!(Path::new(f.path()).join("app.py").is_file());
}

/// An image left by a run that died (owner label of a process that no longer exists) is swept by the next
/// one, and its presence does not break the sweep: `image ls` has no `.Label` placeholder, so the sweep that
/// read owners through it failed on the first labelled image and every build after a killed run errored.
#[test]
fn an_image_left_by_a_dead_run_is_swept() {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default().trim().to_string();
    let dead = (4_000_000u32..).find(|p| !std::path::Path::new(&format!("/proc/{p}")).exists()).unwrap();
    let tag = format!("perf-acceptance/test-leftover:{dead}");
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(ctx.path().join("Dockerfile"), "FROM scratch\nLABEL purpose=test-leftover\n").unwrap();
    let built = std::process::Command::new("docker")
        .args(["build", "-q", "-t", &tag, "--label", &format!("{OWNER_LABEL}={host}:{dead}")])
        .arg(ctx.path())
        .output()
        .unwrap();
    assert!(built.status.success(), "{}", String::from_utf8_lossy(&built.stderr));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let docker = rt.block_on(Docker::connect(&DockerOptions { host: None, cli: None })).unwrap();
    let swept = rt.block_on(docker.sweep());
    let left = std::process::Command::new("docker").args(["image", "ls", "-q", &tag]).output().unwrap();
    let left = String::from_utf8_lossy(&left.stdout).trim().to_string();
    if !left.is_empty() {
        let _ = std::process::Command::new("docker").args(["rmi", "-f", &tag]).output();
    }
    assert!(swept.as_ref().is_ok_and(|n| *n >= 1), "{swept:?}");
    assert_eq!(left, "", "the dead run's image was not removed");
}
