//! Tests of the gateway process harness that do not need the real gateway binary.

use std::path::Path;
use std::time::Duration;

use anyhow::ensure;
use testkit::{ClosedPort, GatewayProcess, TempConfigDir, wait_for_port};

#[test]
fn temp_config_dir_writes_atomically_and_cleans_up() -> anyhow::Result<()> {
    let dir = TempConfigDir::new()?;
    let root = dir.path().to_path_buf();
    let written = dir.write("manifests/gateway.yaml", "kind: Gateway\n")?;
    assert_eq!(written, root.join("manifests/gateway.yaml"));
    assert_eq!(std::fs::read_to_string(&written)?, "kind: Gateway\n");
    dir.write("manifests/gateway.yaml", "kind: HTTPRoute\n")?;
    assert_eq!(std::fs::read_to_string(&written)?, "kind: HTTPRoute\n");
    let leftovers = std::fs::read_dir(root.join("manifests"))?.count();
    assert_eq!(leftovers, 1, "no scratch files are left behind");

    assert!(dir.write("../escape.yaml", "").is_err());
    assert!(dir.write("/etc/escape.yaml", "").is_err());
    dir.remove("manifests/gateway.yaml")?;
    assert!(!written.exists());
    assert!(dir.remove("manifests/gateway.yaml").is_err());

    drop(dir);
    assert!(!root.exists(), "the directory is removed on drop");
    Ok(())
}

#[tokio::test]
async fn gateway_that_exits_early_reports_its_stderr() -> anyhow::Result<()> {
    // `sh run --config ...` fails at once because there is no script called `run`; sh says so on stderr.
    let result = GatewayProcess::start(Path::new("sh"), Path::new("/nonexistent.yaml"), &[]).await;
    let Err(error) = result else {
        anyhow::bail!("sh cannot become ready");
    };
    let message = format!("{error:#}");
    ensure!(message.contains("exited before it was ready"), "{message}");
    ensure!(message.contains("run"), "stderr is included: {message}");
    Ok(())
}

#[tokio::test]
async fn wait_for_port_times_out_on_a_closed_port() {
    // Bound but not listening, for the whole test: connections are refused, and no other test
    // running beside this one can take the port (a port only found free could be).
    let closed = ClosedPort::reserve();
    let addr = closed.addr();
    assert!(
        wait_for_port(addr, Duration::from_millis(100))
            .await
            .is_err()
    );
}
