//! Headless Debian `chromium`, run once per page load: `--dump-dom` (the DOM after the page's
//! scripts ran for a virtual-time budget) or `--screenshot`. And reading that DOM dump.
//!
//! Each run gets its own profile directory and is killed (by its PID) if it outlives its
//! deadline or the test drops it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use testkit::TempConfigDir;
use tokio::time::Instant;

/// How long one Chromium run may take.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// Virtual time the page's scripts get before the DOM is dumped or the screenshot taken: the
/// dashboard refreshes once a (virtual) second, so this is several refreshes. Fetches to the
/// gateway pause virtual time, so they all complete.
const VIRTUAL_TIME_BUDGET_MS: u32 = 6000;

/// A Chromium binary and a scratch directory for its profiles and output.
pub(crate) struct Chromium {
    binary: PathBuf,
    scratch: TempConfigDir,
    runs: std::cell::Cell<u32>,
}

/// A running Chromium, killed on drop.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

impl Chromium {
    /// Finds `chromium` on `PATH`.
    ///
    /// # Errors
    ///
    /// When there is none: these tests need it (they do not skip), and the error says how to
    /// install it.
    pub(crate) fn find() -> anyhow::Result<Chromium> {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let binary = std::env::split_paths(&path)
            .map(|dir| dir.join("chromium"))
            .find(|candidate| candidate.is_file())
            .context(
                "the dashboard tests need headless Chromium, and `chromium` is not on PATH: \
                 install it with `apt-get install -y chromium` (scripts/test does)",
            )?;
        Ok(Chromium {
            binary,
            scratch: TempConfigDir::new()?,
            runs: std::cell::Cell::new(0),
        })
    }

    /// The DOM of `url` after its scripts ran for the virtual-time budget, serialised.
    pub(crate) async fn dump_dom(&self, url: &str) -> anyhow::Result<String> {
        let output = self.next_path("dom.html");
        self.run(&["--dump-dom", url], Some(&output)).await?;
        let dom = std::fs::read_to_string(&output)
            .with_context(|| format!("reading {}", output.display()))?;
        if !dom.contains("</html>") {
            bail!("chromium dumped no complete document for {url}: {dom:?}");
        }
        Ok(dom)
    }

    /// A PNG screenshot of `url` in a `width`×`height` window, after the virtual-time budget;
    /// returns the file's path (in the scratch directory, removed when `self` is dropped).
    pub(crate) async fn screenshot(
        &self,
        url: &str,
        width: u32,
        height: u32,
    ) -> anyhow::Result<PathBuf> {
        let file = self.next_path("screenshot.png");
        let screenshot = format!("--screenshot={}", file.display());
        let window = format!("--window-size={width},{height}");
        self.run(&[&screenshot, &window, "--hide-scrollbars", url], None)
            .await?;
        if !file.is_file() {
            bail!(
                "chromium wrote no screenshot of {url} to {}",
                file.display()
            );
        }
        Ok(file)
    }

    fn next_path(&self, name: &str) -> PathBuf {
        let run = self.runs.get() + 1;
        self.runs.set(run);
        self.scratch.path().join(format!("{run}-{name}"))
    }

    /// Runs Chromium headless with `args` and waits for it to exit successfully; stdout goes
    /// to `stdout` (or nowhere), stderr to a file quoted in errors.
    async fn run(&self, args: &[&str], stdout: Option<&Path>) -> anyhow::Result<()> {
        let profile = self.next_path("profile");
        let stderr_path = self.next_path("stderr.log");
        let stdout = match stdout {
            Some(path) => Stdio::from(std::fs::File::create(path)?),
            None => Stdio::null(),
        };
        let child = Command::new(&self.binary)
            .args([
                "--headless",
                // Tests run as root in containers, where Chromium's sandbox cannot start.
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--force-color-profile=srgb",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(format!("--virtual-time-budget={VIRTUAL_TIME_BUDGET_MS}"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(std::fs::File::create(&stderr_path)?)
            .spawn()
            .with_context(|| format!("spawning {}", self.binary.display()))?;
        let mut running = Running(child);
        let deadline = Instant::now() + RUN_TIMEOUT;
        loop {
            if let Some(status) = running.0.try_wait()? {
                if status.success() {
                    return Ok(());
                }
                let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
                bail!("chromium {args:?} exited with {status}; stderr:\n{stderr}");
            }
            if Instant::now() >= deadline {
                let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
                bail!("chromium {args:?} still running after {RUN_TIMEOUT:?}; stderr:\n{stderr}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The opening tag of the first element whose opening tag contains `marker` (such as
/// `id="generation"` or `data-endpoint="127.0.0.1:8080"`), and everything after it up to the
/// element's end tag `</name>` (first one: enough for the leaf elements and table rows asked
/// about here).
pub(crate) fn element<'a>(dom: &'a str, marker: &str) -> anyhow::Result<&'a str> {
    let at = dom
        .find(marker)
        .with_context(|| format!("no element with {marker} in the page:\n{dom}"))?;
    let start = dom[..=at]
        .rfind('<')
        .context("a tag opens before the marker")?;
    let name: String = dom[start + 1..]
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .collect();
    let close = format!("</{name}>");
    let end = dom[start..]
        .find(&close)
        .map_or(dom.len(), |offset| start + offset + close.len());
    Ok(&dom[start..end])
}

/// The value of attribute `name` in the opening tag of `element`.
pub(crate) fn attribute<'a>(element: &'a str, name: &str) -> anyhow::Result<&'a str> {
    let tag = &element[..element.find('>').unwrap_or(element.len())];
    let pattern = format!(" {name}=\"");
    let start = tag
        .find(&pattern)
        .with_context(|| format!("no attribute {name} in {tag}"))?
        + pattern.len();
    let end = tag[start..]
        .find('"')
        .with_context(|| format!("unterminated attribute {name} in {tag}"))?;
    Ok(&tag[start..start + end])
}

/// A numeric attribute.
pub(crate) fn number(element: &str, name: &str) -> anyhow::Result<f64> {
    let value = attribute(element, name)?;
    value
        .parse()
        .with_context(|| format!("attribute {name}={value:?} is not a number"))
}

/// The text of `element` with its tags removed.
pub(crate) fn text(element: &str) -> String {
    let mut text = String::new();
    let mut in_tag = false;
    for c in element.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text
}
