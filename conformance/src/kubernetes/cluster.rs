//! [`Cluster`]: a kube client that applies, reads and deletes the tests' objects, whatever their kind.
//!
//! Kinds are resolved through the API server's discovery (plural and scope) once each, so the runner needs no
//! table of kinds: a manifest may hold any kind the API server serves.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

use anyhow::{Context, bail};
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::discovery::Scope;
use serde_json::Value;

use crate::manifests::{kind, name, namespace};

/// The field manager of the runner's writes.
const FIELD_MANAGER: &str = "portcullis-conformance";

/// A client to the API server, with the kinds it has looked up.
pub(crate) struct Cluster {
    /// The admin client.
    client: kube::Client,
    /// `(apiVersion, kind)` to the resource and whether it is namespaced.
    resources: Mutex<BTreeMap<(String, String), (ApiResource, bool)>>,
}

impl Cluster {
    /// A client from `kubeconfig` (its current context).
    pub(crate) async fn connect(kubeconfig: &Path) -> anyhow::Result<Cluster> {
        let file = kube::config::Kubeconfig::read_from(kubeconfig)
            .with_context(|| format!("reading the kubeconfig {}", kubeconfig.display()))?;
        let config =
            kube::Config::from_custom_kubeconfig(file, &kube::config::KubeConfigOptions::default())
                .await
                .with_context(|| format!("loading the kubeconfig {}", kubeconfig.display()))?;
        let client = kube::Client::try_from(config).context("building the kube client")?;
        Ok(Cluster {
            client,
            resources: Mutex::new(BTreeMap::new()),
        })
    }

    /// Creates or replaces `object` (server-side apply, forced, field manager `portcullis-conformance`).
    pub(crate) async fn apply(&self, object: &Value) -> anyhow::Result<()> {
        let api = self.api_for(object).await?;
        api.patch(
            name(object),
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(object),
        )
        .await
        .with_context(|| format!("applying {}", describe(object)))?;
        Ok(())
    }

    /// The object `object` names (its kind, namespace and name) as the API server holds it, status
    /// included; `None` when there is none.
    pub(crate) async fn get(&self, object: &Value) -> anyhow::Result<Option<Value>> {
        let api = self.api_for(object).await?;
        let found = api
            .get_opt(name(object))
            .await
            .with_context(|| format!("reading {}", describe(object)))?;
        found
            .map(|found| serde_json::to_value(found).context("the object as JSON"))
            .transpose()
    }

    /// Deletes the object `object` names; one that is already gone is no error.
    pub(crate) async fn delete(&self, object: &Value) -> anyhow::Result<()> {
        let api = self.api_for(object).await?;
        match api.delete(name(object), &DeleteParams::default()).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.is_not_found() => Ok(()),
            Err(error) => Err(error).with_context(|| format!("deleting {}", describe(object))),
        }
    }

    /// The API of `object`'s kind, in its namespace when the kind is namespaced.
    async fn api_for(&self, object: &Value) -> anyhow::Result<Api<DynamicObject>> {
        let api_version = object
            .get("apiVersion")
            .and_then(Value::as_str)
            .with_context(|| format!("{} has no apiVersion", describe(object)))?;
        let key = (api_version.to_owned(), kind(object).to_owned());
        let known = self
            .resources
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&key)
            .cloned();
        let (resource, is_namespaced) = match known {
            Some(known) => known,
            None => {
                let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
                let gvk = GroupVersionKind::gvk(group, version, kind(object));
                let (resource, capabilities) = kube::discovery::pinned_kind(&self.client, &gvk)
                    .await
                    .with_context(|| {
                        format!(
                            "the API server does not serve {api_version} {}",
                            kind(object)
                        )
                    })?;
                let found = (resource, capabilities.scope == Scope::Namespaced);
                self.resources
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .insert(key, found.clone());
                found
            }
        };
        if name(object).is_empty() {
            bail!("{} has no metadata.name", describe(object));
        }
        Ok(if is_namespaced {
            Api::namespaced_with(self.client.clone(), namespace(object), &resource)
        } else {
            Api::all_with(self.client.clone(), &resource)
        })
    }
}

/// `Kind namespace/name` of an object, for messages.
pub(crate) fn describe(object: &Value) -> String {
    format!("{} {}/{}", kind(object), namespace(object), name(object))
}
