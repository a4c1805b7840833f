//! [`ObjectMeta`]: the metadata of every object we read, with only the fields Portcullis reads.
//!
//! The Kubernetes type carries every field of the API: 360 bytes inline in each object before
//! any string, and labels in a `BTreeMap`, whose first node is ~540 bytes for one label (every
//! EndpointSlice has one). With 15,000 objects at 5,000 routes that was ~8 MB. This one keeps
//! the same field names, serde names and field types where they are read, so a document reads
//! the same way: name, namespace, labels (sorted pairs, [`Labels`]), generation
//! (`observedGeneration`) and creationTimestamp (precedence between conflicting objects).
//! Other metadata (uid, resourceVersion, annotations, managedFields, ...) is ignored as an
//! unknown field is: nothing reads it, and keeping it would make an object that changed only
//! there (a status write bumps `resourceVersion`) look changed.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Name;

/// `metadata` of an object.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    /// The object's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<Name>,
    /// Its namespace (`default` once parsed, for namespaced kinds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<Name>,
    /// Its labels: Namespace labels drive `allowedRoutes.namespaces.selector`, an
    /// EndpointSlice's `kubernetes.io/service-name` names its Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Labels>,
    /// The generation of the spec, echoed as `observedGeneration` in status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
    /// When the object was created: the older of two conflicting objects wins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_timestamp: Option<Time>,
}

/// An object's labels, sorted by key, each key once: a map read as `metadata.labels` is, in
/// one allocation of exactly its pairs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Labels(Box<[(Name, Name)]>);

impl Labels {
    /// The value of label `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .binary_search_by(|(label, _)| label.as_str().cmp(key))
            .ok()
            .map(|index| self.0[index].1.as_str())
    }

    /// The labels, sorted by key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0
            .iter()
            .map(|(key, value)| (key.as_str(), value.as_str()))
    }

    /// How many labels there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<BTreeMap<String, String>> for Labels {
    fn from(map: BTreeMap<String, String>) -> Labels {
        // A BTreeMap iterates in key order with each key once. Most values (a Service's
        // name) and some keys fit in the names' inline bytes.
        Labels(
            map.into_iter()
                .map(|(key, value)| (Name::from(key), Name::from(value)))
                .collect(),
        )
    }
}

impl FromIterator<(String, String)> for Labels {
    /// Sorted by key; a later pair wins a duplicate key, as in a map.
    fn from_iter<I: IntoIterator<Item = (String, String)>>(pairs: I) -> Labels {
        pairs.into_iter().collect::<BTreeMap<_, _>>().into()
    }
}

impl Serialize for Labels {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for Labels {
    /// Read as the map the Kubernetes type reads, so errors are worded the same.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Labels, D::Error> {
        BTreeMap::<String, String>::deserialize(deserializer).map(Labels::from)
    }
}

#[cfg(test)]
mod tests;
