//! h2spec (github.com/summerwind/h2spec v2.2.1), the HTTP/2 conformance suite, against the
//! gateway's h2c listener: 145 cases of RFC 7540/9113 and RFC 7541 behaviour, each a short
//! raw-frame exchange.
//!
//! h2spec lives outside the repository, in `~/.cache/portcullis-h2spec/bin` (`scripts/test`
//! builds it there with `go install`). When it is missing the test fails with the command that
//! installs it, rather than passing without it.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use testkit::TempConfigDir;

use crate::fixture::eventually;
use crate::fixture::manifest::{NS, http_route, rule, service_backend, service_ref};
use crate::fixture::running::{Echoes, TestGateway};

/// The command that installs h2spec where [`h2spec_binary`] looks.
const INSTALL_COMMAND: &str = "GOBIN=~/.cache/portcullis-h2spec/bin go install \
                               github.com/summerwind/h2spec/cmd/h2spec@v2.2.1+incompatible";

/// How many cases h2spec v2.2.1 runs against a server.
const CASES: usize = 145;

/// How long the whole run may take (it takes well under a second).
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// `~/.cache/portcullis-h2spec/bin/h2spec`, which must exist.
fn h2spec_binary() -> anyhow::Result<PathBuf> {
    let home = std::env::var_os("HOME").context("HOME is not set")?;
    let binary = PathBuf::from(home).join(".cache/portcullis-h2spec/bin/h2spec");
    ensure!(
        binary.is_file(),
        "h2spec is not installed at {} (this test needs it): run scripts/test, which installs \
         it with `{INSTALL_COMMAND}`",
        binary.display()
    );
    Ok(binary)
}

/// What became of one h2spec case.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Passed,
    Skipped,
    Failed(String),
}

/// One case of the JUnit report.
#[derive(Debug)]
struct Case {
    /// `http2/3.5`, `generic/2`, `hpack/6.1`: the spec and section.
    package: String,
    /// The case's number within its section, from 1 (h2spec's `#2`).
    number: usize,
    description: String,
    outcome: Outcome,
}

impl std::fmt::Display for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} #{} {:?}",
            self.package, self.number, self.description
        )?;
        if let Outcome::Failed(message) = &self.outcome {
            write!(f, ": {}", message.trim())?;
        }
        Ok(())
    }
}

/// The value of attribute `name` in the tag text `tag`.
fn attribute(tag: &str, name: &str) -> Option<String> {
    let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    let end = start + tag[start..].find('"')?;
    Some(unescape(&tag[start..end]))
}

/// XML's predefined entities and the numeric ones Go's encoder writes.
fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#34;", "\"")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&apos;", "'")
        .replace("&#xA;", "\n")
        .replace("&#x9;", "\t")
        .replace("&amp;", "&")
}

/// The cases of h2spec's JUnit report, in order (h2spec's `reporter/junit_report.go`: one
/// `<testcase package classname>` per case, empty when it passed, holding `<skipped>`,
/// `<failure>` or `<error>` otherwise).
fn parse_report(report: &str) -> anyhow::Result<Vec<Case>> {
    let mut cases: Vec<Case> = Vec::new();
    for chunk in report.split("<testcase ").skip(1) {
        let tag_end = chunk.find('>').context("an unterminated <testcase>")?;
        let tag = format!(" {}", &chunk[..tag_end]);
        let package = attribute(&tag, "package").context("a <testcase> without package")?;
        let description = attribute(&tag, "classname").context("a <testcase> without classname")?;
        let content = if tag.ends_with('/') {
            ""
        } else {
            let end = chunk
                .find("</testcase>")
                .context("an unterminated <testcase>")?;
            &chunk[tag_end + 1..end]
        };
        let outcome = if content.contains("<skipped") {
            Outcome::Skipped
        } else if content.contains("<failure") || content.contains("<error") {
            Outcome::Failed(unescape(content))
        } else {
            Outcome::Passed
        };
        let number = 1 + cases.iter().filter(|case| case.package == package).count();
        cases.push(Case {
            package,
            number,
            description,
            outcome,
        });
    }
    Ok(cases)
}

/// The one case the gateway fails on purpose: §3.5 #2, an invalid connection preface must be
/// a connection error (RFC 9113 §3.4). HTTP/1.1 and h2c with prior knowledge share the port,
/// and the listener tells them apart by the first bytes (`proxy::listener::sniff`): anything
/// that is not the HTTP/2 preface is an HTTP/1.1 request, and is answered as one (400), where
/// h2spec expects the connection simply closed.
fn is_the_shared_port_preface(case: &Case) -> bool {
    case.package == "http2/3.5"
        && case.number == 2
        && case.description == "Sends invalid connection preface"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2spec_passes_every_case_but_the_shared_port_preface() -> anyhow::Result<()> {
    let binary = h2spec_binary()?;
    // The echo reply (a few hundred bytes) is long enough for the flow-control cases (§6.9.1,
    // §6.9.2 and §6.5.3 want at least 5 bytes of body), which h2spec skips otherwise.
    let echoes = Echoes::start(&["h2spec"]).await?;
    let mut documents = service_backend(NS, "h2spec", &[echoes.addr("h2spec")]);
    documents.push(http_route(
        "h2spec",
        &[],
        vec![rule(vec![], vec![service_ref("h2spec")])],
    ));
    let gateway = TestGateway::start(&documents).await?;

    let output = TempConfigDir::new()?;
    let report = output.path().join("report.xml");
    let log = output.path().join("h2spec.log");
    let mut child = Command::new(&binary)
        .arg("-h")
        .arg("127.0.0.1")
        .arg("-p")
        .arg(gateway.listener().port().to_string())
        // Each case's own timeout (2 s by default), for loaded CI machines.
        .arg("-o")
        .arg("5")
        .arg("-j")
        .arg(&report)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log)?)
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("running {}", binary.display()))?;
    let exited = eventually(RUN_TIMEOUT, async || {
        child.try_wait()?.context("h2spec is still running")
    })
    .await;
    if exited.is_err() {
        // Our own child, by its handle.
        let _ = child.kill();
        let _ = child.wait();
    }
    let status = exited?;
    let text = std::fs::read_to_string(&report).with_context(|| {
        format!(
            "h2spec ({status}) wrote no report; its output:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        )
    })?;
    let cases = parse_report(&text)?;
    ensure!(
        cases.len() == CASES,
        "h2spec v2.2.1 runs {CASES} cases, the report has {}",
        cases.len()
    );
    ensure!(
        cases.iter().any(is_the_shared_port_preface),
        "the report has no case http2/3.5 #2 \"Sends invalid connection preface\": {:?}",
        cases
            .iter()
            .filter(|case| case.package == "http2/3.5")
            .collect::<Vec<_>>()
    );
    let unexpected: Vec<String> = cases
        .iter()
        .filter(|case| case.outcome != Outcome::Passed && !is_the_shared_port_preface(case))
        .map(|case| match case.outcome {
            Outcome::Skipped => format!("skipped: {case}"),
            _ => format!("failed: {case}"),
        })
        .collect();
    if !unexpected.is_empty() {
        bail!(
            "h2spec: {} of {CASES} cases did not pass:\n{}",
            unexpected.len(),
            unexpected.join("\n")
        );
    }
    Ok(())
}
