//! `portcullis explain` and the admin `/explain`: on the quickstart config, a request with
//! `qa: canary-test` is served by the canary rule (rules[0]) and the default rule (rules[1])
//! is said to lose on precedence; offline (text and `--json`) and against a running gateway.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{Context, ensure};
use http::StatusCode;
use serde_json::Value;

use crate::fixture::running::{ConfigDir, binary};

/// The quickstart example, as the README tells users to run it.
fn quickstart() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/quickstart")
}

fn portcullis(args: &[&str]) -> anyhow::Result<Output> {
    Command::new(binary())
        .args(args)
        .output()
        .with_context(|| format!("running portcullis {args:?}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `explain` on the quickstart config with `args` after the config.
fn explain_quickstart(args: &[&str]) -> anyhow::Result<Output> {
    let config = quickstart();
    let config = config.to_str().context("the repository path is UTF-8")?;
    let mut all = vec!["explain", "--config", config];
    all.extend_from_slice(args);
    portcullis(&all)
}

/// The canary rule wins; the default rule matched too and lost on precedence (header count).
fn ensure_canary_explained(explanation: &Value) -> anyhow::Result<()> {
    ensure!(
        explanation["outcome"] == "matched",
        "the request matches: {explanation}"
    );
    let matched = &explanation["matched"];
    ensure!(
        matched["rule_name"] == "HTTPRoute shop/shop rules[0]" && matched["rule"] == 0,
        "the canary rule serves it: {matched}"
    );
    ensure!(
        explanation["listener"]["label"] == "Gateway shop/web listener http",
        "on the quickstart listener: {explanation}"
    );
    let backend = &matched["action"]["backends"][0];
    ensure!(
        backend["backend"] == "Backend shop/shop-v2"
            && backend["endpoints"][0]["address"] == "127.0.0.1"
            && backend["endpoints"][0]["port"] == 3002,
        "it forwards to shop-v2 at 127.0.0.1:3002: {backend}"
    );
    let route = explanation["routes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|route| route["route"] == "HTTPRoute shop/shop")
        .with_context(|| format!("the route is explained: {explanation}"))?;
    let default = &route["rules"][1];
    let reason = &default["matches"][0]["reason"];
    ensure!(
        default["result"] == "lost"
            && reason["kind"] == "precedence"
            && reason["criterion"] == "header_count"
            && reason["winner"] == "HTTPRoute shop/shop rules[0] match 0",
        "the default rule lost on the number of header matches: {default}"
    );
    Ok(())
}

#[test]
fn explain_names_the_canary_rule_and_why_the_default_lost() -> anyhow::Result<()> {
    let output = explain_quickstart(&["GET", "http://shop.example.com/", "-H", "qa:canary-test"])?;
    let stdout = text(&output.stdout);
    ensure!(
        output.status.success(),
        "explain failed ({}): {stdout}{}",
        output.status,
        text(&output.stderr)
    );
    ensure!(
        stdout.contains("matched:  HTTPRoute shop/shop rules[0] match 0"),
        "the canary rule is named:\n{stdout}"
    );
    ensure!(
        stdout.contains(
            "rules[1] match 0 (path PathPrefix /) [lost]: matched, but HTTPRoute shop/shop rules[0] match 0 takes precedence [header_count]"
        ),
        "the default rule is said to lose on header matches:\n{stdout}"
    );
    ensure!(
        stdout.contains("endpoint 127.0.0.1:3002"),
        "the canary backend's endpoint is listed:\n{stdout}"
    );

    let output = explain_quickstart(&[
        "GET",
        "http://shop.example.com/",
        "-H",
        "qa:canary-test",
        "--json",
    ])?;
    ensure!(
        output.status.success(),
        "explain --json failed: {}",
        output.status
    );
    let explanation: Value = serde_json::from_slice(&output.stdout)
        .with_context(|| format!("--json prints JSON: {}", text(&output.stdout)))?;
    ensure_canary_explained(&explanation)
}

#[test]
fn explain_without_the_header_names_the_default_and_why_the_canary_did_not_match()
-> anyhow::Result<()> {
    let output = explain_quickstart(&["GET", "http://shop.example.com/", "--json"])?;
    ensure!(output.status.success(), "explain failed: {}", output.status);
    let explanation: Value = serde_json::from_slice(&output.stdout)?;
    ensure!(
        explanation["matched"]["rule"] == 1,
        "the default rule serves it: {explanation}"
    );
    let canary = &explanation["routes"][0]["rules"][0]["matches"][0];
    ensure!(
        canary["result"] == "no_match"
            && canary["reason"]["kind"] == "header"
            && canary["reason"]["name"] == "qa",
        "the canary rule did not match for want of the qa header: {canary}"
    );
    Ok(())
}

#[test]
fn explain_exit_codes_tell_no_match_from_bad_input() -> anyhow::Result<()> {
    let output = explain_quickstart(&["GET", "http://elsewhere.example.com/"])?;
    ensure!(
        output.status.code() == Some(1),
        "no route matches: exit 1, got {} with {}",
        output.status,
        text(&output.stdout)
    );
    ensure!(
        text(&output.stdout)
            .contains("hostname: elsewhere.example.com matches none of shop.example.com"),
        "the hostname is the reason: {}",
        text(&output.stdout)
    );
    let output = explain_quickstart(&["GET", "shop.example.com/"])?;
    ensure!(
        output.status.code() == Some(2) && text(&output.stderr).contains("invalid URL"),
        "a relative URL is bad input: {} {}",
        output.status,
        text(&output.stderr)
    );
    let output =
        explain_quickstart(&["--gateway", "shop/nope", "GET", "http://shop.example.com/"])?;
    let stderr = text(&output.stderr);
    ensure!(
        output.status.code() == Some(2)
            && stderr.contains("unknown gateway shop/nope")
            && stderr.contains("shop/web"),
        "an unknown gateway is named, with the known ones: {} {stderr}",
        output.status
    );
    Ok(())
}

/// The quickstart config in a temporary directory, its listener on a free port.
fn quickstart_on_free_port() -> anyhow::Result<ConfigDir> {
    let config = ConfigDir::new()?;
    let port = config.listener().port();
    for file in ["gateway.yaml", "backends.yaml"] {
        let text = std::fs::read_to_string(quickstart().join(file))
            .with_context(|| format!("reading examples/quickstart/{file}"))?;
        let text = text.replace("port: 8080", &format!("port: {port}"));
        config.write_text(file, &text)?;
    }
    Ok(config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_explain_answers_against_the_live_config() -> anyhow::Result<()> {
    let gateway = quickstart_on_free_port()?.start(&[]).await?;
    let explanation = gateway
        .admin_json("/explain?method=GET&url=http%3A%2F%2Fshop.example.com%2F&header=qa:canary-test&gateway=shop/web")
        .await?;
    ensure_canary_explained(&explanation)?;
    ensure!(
        explanation["socket"]["address"] == gateway.listener().to_string(),
        "the socket is the live listener {}: {explanation}",
        gateway.listener()
    );
    ensure!(
        explanation["matched"]["action"]["backends"][0]["live"].is_object()
            || explanation["matched"]["action"]["backends"][0]["live"].is_array(),
        "the live endpoint state of the backend is attached: {explanation}"
    );
    for bad in [
        "/explain?url=shop.example.com",
        "/explain",
        "/explain?url=http://x/&bogus=1",
    ] {
        let (status, body) = gateway.process.get_admin(bad).await?;
        ensure!(
            status == StatusCode::BAD_REQUEST && body.contains("\"error\""),
            "{bad} answered {status}: {body}"
        );
    }
    let (status, body) = gateway
        .process
        .get_admin("/explain?url=http://x/&gateway=shop/nope")
        .await?;
    ensure!(
        status == StatusCode::BAD_REQUEST && body.contains("unknown gateway shop/nope"),
        "an unknown gateway is a 400 naming it: {status} {body}"
    );
    Ok(())
}

#[test]
fn explain_help_explains_every_flag() -> anyhow::Result<()> {
    let output = portcullis(&["explain", "--help"])?;
    let stdout = text(&output.stdout);
    ensure!(
        output.status.success(),
        "explain --help failed: {}",
        output.status
    );
    for word in [
        "--config",
        "--gateway",
        "--header",
        "-H",
        "--json",
        "<METHOD>",
        "<URL>",
    ] {
        ensure!(
            stdout.contains(word),
            "explain --help does not mention {word}:\n{stdout}"
        );
    }
    let output = portcullis(&["--help"])?;
    ensure!(
        text(&output.stdout).contains("explain"),
        "--help lists explain:\n{}",
        text(&output.stdout)
    );
    Ok(())
}
