//! `portcullis check` and `--help`: the offline checker users put in CI. It must exit 0 on a
//! healthy config, non-zero on an unhealthy one, and name each problem by object and field.

use std::process::{Command, Output};

use anyhow::{Context, ensure};
use serde_json::Value;

use crate::fixture::manifest::{NS, http_route, path_match, rule, service_backend, service_ref};
use crate::fixture::running::{ConfigDir, binary};

/// The line `check` must print for the missing Service.
const MISSING_SERVICE_PROBLEM: &str = "HTTPRoute e2e/shop rules[1].backendRefs[0]: Service e2e/missing-svc not found (BackendNotFound)";

/// Runs the binary with `args` and returns its output.
fn portcullis(args: &[&str]) -> anyhow::Result<Output> {
    Command::new(binary())
        .args(args)
        .output()
        .with_context(|| format!("running portcullis {args:?}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A config with route `shop`: rules[0] to Service `good` (which exists), rules[1] to Service
/// `rule_1_service` (`good`, or `missing-svc`, which does not exist).
fn write_config(rule_1_service: &str) -> anyhow::Result<ConfigDir> {
    let config = ConfigDir::new()?;
    config.write_gateway(None)?;
    let mut documents = service_backend(NS, "good", &["127.0.0.1:8081".parse()?]);
    documents.push(http_route(
        "shop",
        &["shop.example.com"],
        vec![
            rule(
                vec![path_match("PathPrefix", "/")],
                vec![service_ref("good")],
            ),
            rule(
                vec![path_match("PathPrefix", "/cart")],
                vec![service_ref(rule_1_service)],
            ),
        ],
    ));
    config.write("shop.yaml", &documents)?;
    Ok(config)
}

fn config_arg(config: &ConfigDir) -> anyhow::Result<&str> {
    config.path().to_str().context("the temp dir path is UTF-8")
}

#[test]
fn check_passes_a_good_config() -> anyhow::Result<()> {
    let config = write_config("good")?;
    let output = portcullis(&["check", "--config", config_arg(&config)?])?;
    let stdout = text(&output.stdout);
    ensure!(
        output.status.success(),
        "check failed on a good config: {}\n{stdout}",
        output.status
    );
    ensure!(
        stdout.contains("ok   HTTPRoute e2e/shop"),
        "the route is listed as ok:\n{stdout}"
    );
    ensure!(
        stdout.contains("ok   Gateway e2e/gw"),
        "the Gateway is listed as ok:\n{stdout}"
    );
    ensure!(!stdout.contains("FAIL"), "nothing fails:\n{stdout}");
    Ok(())
}

#[test]
fn check_fails_on_a_missing_service_and_names_it() -> anyhow::Result<()> {
    let config = write_config("missing-svc")?;
    let output = portcullis(&["check", "--config", config_arg(&config)?])?;
    let stdout = text(&output.stdout);
    ensure!(
        !output.status.success(),
        "check passed a config with a missing Service:\n{stdout}"
    );
    ensure!(
        stdout.contains(MISSING_SERVICE_PROBLEM),
        "stdout lacks {MISSING_SERVICE_PROBLEM:?}:\n{stdout}"
    );
    ensure!(
        stdout.contains("FAIL HTTPRoute e2e/shop"),
        "the route is marked FAIL:\n{stdout}"
    );
    Ok(())
}

#[test]
fn check_json_reports_the_same_problem() -> anyhow::Result<()> {
    let config = write_config("missing-svc")?;
    let output = portcullis(&["check", "--config", config_arg(&config)?, "--json"])?;
    ensure!(
        !output.status.success(),
        "check --json passed a config with a missing Service"
    );
    let document: Value = serde_json::from_slice(&output.stdout)
        .with_context(|| format!("check --json printed no JSON: {}", text(&output.stdout)))?;
    ensure!(document["healthy"] == false, "healthy is false: {document}");
    let problems = document["problems"].as_array().cloned().unwrap_or_default();
    ensure!(
        problems
            .iter()
            .any(|p| p.as_str() == Some(MISSING_SERVICE_PROBLEM)),
        "problems lack {MISSING_SERVICE_PROBLEM:?}: {problems:?}"
    );
    Ok(())
}

#[test]
fn check_fails_on_a_path_that_does_not_exist() -> anyhow::Result<()> {
    let config = ConfigDir::new()?;
    let missing = config.path().join("does-not-exist");
    let missing = missing.to_str().context("the temp dir path is UTF-8")?;
    let output = portcullis(&["check", "--config", missing])?;
    ensure!(
        !output.status.success(),
        "check passed a path that does not exist"
    );
    ensure!(
        text(&output.stderr).contains("does-not-exist"),
        "stderr names the path: {}",
        text(&output.stderr)
    );
    Ok(())
}

#[test]
fn run_help_explains_every_flag() -> anyhow::Result<()> {
    let output = portcullis(&["run", "--help"])?;
    let stdout = text(&output.stdout);
    ensure!(
        output.status.success(),
        "run --help failed: {}",
        output.status
    );
    for flag in [
        "--config",
        "--admin",
        "--bind",
        "--controller-name",
        "--access-log",
        "--drain-timeout",
        "--threads",
    ] {
        ensure!(
            stdout.contains(flag),
            "run --help does not mention {flag}:\n{stdout}"
        );
    }
    Ok(())
}

#[test]
fn check_help_explains_every_flag() -> anyhow::Result<()> {
    let output = portcullis(&["check", "--help"])?;
    let stdout = text(&output.stdout);
    ensure!(
        output.status.success(),
        "check --help failed: {}",
        output.status
    );
    for flag in ["--config", "--controller-name", "--json"] {
        ensure!(
            stdout.contains(flag),
            "check --help does not mention {flag}:\n{stdout}"
        );
    }
    Ok(())
}

#[test]
fn top_level_help_lists_the_subcommands() -> anyhow::Result<()> {
    let output = portcullis(&["--help"])?;
    let stdout = text(&output.stdout);
    ensure!(output.status.success(), "--help failed: {}", output.status);
    ensure!(
        stdout.contains("run") && stdout.contains("check"),
        "--help lists run and check:\n{stdout}"
    );
    Ok(())
}
