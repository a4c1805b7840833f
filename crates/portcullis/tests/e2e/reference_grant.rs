//! backendRef resolution over real sockets: cross-namespace references and ReferenceGrant
//! (GEP-709), missing Services and unsupported kinds. A reference that cannot be used answers
//! 500, as `HTTPBackendRef` requires, and the route's `ResolvedRefs` condition says why.

use anyhow::ensure;
use http::StatusCode;
use serde_json::{Value, json};

use crate::fixture::manifest::{
    NS, http_route, in_namespace, path_match, reference_grant, rule, service_backend, service_ref,
};
use crate::fixture::running::{Echoes, HOST, TestGateway, ensure_route_condition, route_condition};

/// The namespace the referenced Service lives in.
const OTHER_NS: &str = "other";

/// A route `cross` whose only backendRef is Service `other/remote`, served by echo `remote`,
/// plus `extra` documents.
async fn serve_cross_namespace(extra: Vec<Value>) -> anyhow::Result<(Echoes, TestGateway)> {
    let echoes = Echoes::start(&["remote"]).await?;
    let mut documents = service_backend(OTHER_NS, "remote", &[echoes.addr("remote")]);
    documents.push(http_route(
        "cross",
        &[],
        vec![rule(
            vec![],
            vec![in_namespace(service_ref("remote"), OTHER_NS)],
        )],
    ));
    documents.extend(extra);
    let gateway = TestGateway::start(&documents).await?;
    Ok((echoes, gateway))
}

/// Asserts a 500 that the gateway produced itself (no backend was asked).
async fn ensure_internal_error(gateway: &TestGateway, path: &str) -> anyhow::Result<()> {
    let response = gateway.get(HOST, path, &[]).await?;
    ensure!(
        response.status == StatusCode::INTERNAL_SERVER_ERROR,
        "GET {path}: expected 500, got {} {:?}",
        response.status,
        response.text()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_namespace_backend_ref_without_reference_grant_is_refused() -> anyhow::Result<()> {
    let (echoes, gateway) = serve_cross_namespace(vec![]).await?;
    ensure_internal_error(&gateway, "/").await?;
    ensure!(
        echoes.server("remote").requests() == 0,
        "the refused backend got traffic"
    );
    let status = gateway.status().await?;
    ensure_route_condition(&status, "cross", "ResolvedRefs", "False", "RefNotPermitted")?;
    // The route itself is still attached; only its reference is refused.
    ensure_route_condition(&status, "cross", "Accepted", "True", "Accepted")?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_grant_permits_cross_namespace_backend_ref() -> anyhow::Result<()> {
    let (echoes, gateway) =
        serve_cross_namespace(vec![reference_grant(OTHER_NS, NS, None)]).await?;
    let reply = gateway.get(HOST, "/", &[]).await?;
    ensure!(
        reply.status == StatusCode::OK,
        "expected 200, got {} {:?}",
        reply.status,
        reply.text()
    );
    ensure!(
        reply.echo()?.pod == "remote",
        "answered by {:?}",
        reply.echo()?.pod
    );
    ensure!(
        echoes.server("remote").requests() == 1,
        "the remote backend got the request"
    );
    ensure_route_condition(
        &gateway.status().await?,
        "cross",
        "ResolvedRefs",
        "True",
        "ResolvedRefs",
    )?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_grant_for_another_service_does_not_permit() -> anyhow::Result<()> {
    let grant = reference_grant(OTHER_NS, NS, Some("someone-else"));
    let (_echoes, gateway) = serve_cross_namespace(vec![grant]).await?;
    ensure_internal_error(&gateway, "/").await?;
    ensure_route_condition(
        &gateway.status().await?,
        "cross",
        "ResolvedRefs",
        "False",
        "RefNotPermitted",
    )?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_grant_from_another_namespace_does_not_permit() -> anyhow::Result<()> {
    let grant = reference_grant(OTHER_NS, "somewhere-else", None);
    let (_echoes, gateway) = serve_cross_namespace(vec![grant]).await?;
    ensure_internal_error(&gateway, "/").await?;
    ensure_route_condition(
        &gateway.status().await?,
        "cross",
        "ResolvedRefs",
        "False",
        "RefNotPermitted",
    )?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nonexistent_service_answers_500_with_backend_not_found() -> anyhow::Result<()> {
    let echoes = Echoes::start(&["good"]).await?;
    let mut documents = service_backend(NS, "good", &[echoes.addr("good")]);
    documents.push(http_route(
        "missing",
        &[],
        vec![
            rule(
                vec![path_match("PathPrefix", "/good")],
                vec![service_ref("good")],
            ),
            rule(
                vec![path_match("PathPrefix", "/missing")],
                vec![service_ref("missing-svc")],
            ),
        ],
    ));
    let gateway = TestGateway::start(&documents).await?;

    ensure_internal_error(&gateway, "/missing").await?;
    // The rule with a good reference keeps working.
    ensure!(
        gateway.pod(HOST, "/good", &[]).await? == "good",
        "the valid rule still routes"
    );
    let status = gateway.status().await?;
    ensure_route_condition(
        &status,
        "missing",
        "ResolvedRefs",
        "False",
        "BackendNotFound",
    )?;
    let (_, _, message) = route_condition(&status, NS, "missing", "ResolvedRefs")?;
    ensure!(
        message.contains("rules[1].backendRefs[0]") && message.contains("missing-svc"),
        "the condition names the field and the Service: {message}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_backend_kind_answers_500_with_invalid_kind() -> anyhow::Result<()> {
    let documents = vec![http_route(
        "widget",
        &[],
        vec![rule(
            vec![],
            vec![json!({"group": "example.com", "kind": "Widget", "name": "w", "port": 80})],
        )],
    )];
    let gateway = TestGateway::start(&documents).await?;
    ensure_internal_error(&gateway, "/").await?;
    ensure_route_condition(
        &gateway.status().await?,
        "widget",
        "ResolvedRefs",
        "False",
        "InvalidKind",
    )?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partly_invalid_backend_refs_answer_500_for_their_share() -> anyhow::Result<()> {
    // One good and one missing backendRef of equal weight: the missing one's share of requests
    // gets 500, the rest reach the good backend (HTTPBackendRef: "requests that would have
    // been sent to the invalid backend MUST receive a 500").
    let echoes = Echoes::start(&["good"]).await?;
    let mut documents = service_backend(NS, "good", &[echoes.addr("good")]);
    documents.push(http_route(
        "half",
        &[],
        vec![rule(
            vec![],
            vec![service_ref("good"), service_ref("missing-svc")],
        )],
    ));
    let gateway = TestGateway::start(&documents).await?;
    let (mut ok, mut internal_errors) = (0, 0);
    for _ in 0..200 {
        match gateway.get(HOST, "/", &[]).await?.status {
            StatusCode::OK => ok += 1,
            StatusCode::INTERNAL_SERVER_ERROR => internal_errors += 1,
            other => anyhow::bail!("unexpected status {other}"),
        }
    }
    // 200 draws at p = 0.5: both counts lie in [60, 140] except with probability < 1e-8.
    ensure!(
        (60..=140).contains(&ok) && (60..=140).contains(&internal_errors),
        "expected about half 200 and half 500, got {ok} and {internal_errors}"
    );
    Ok(())
}
