//! The `labels` part: async-profiler context ids → label pairs, from the
//! Pyroscope Java agent's `LabelsSnapshot`.

use alloc::format;

use kiln_proto::jfr::LabelsSnapshot;
use prost::Message;

use crate::error::{Error, Result};
use crate::gzip;

#[derive(Default)]
pub(super) struct ContextLabels {
    snapshot: LabelsSnapshot,
}

impl ContextLabels {
    /// Decodes a snapshot, gunzipping it first (to at most `limit` bytes)
    /// when it starts with the gzip magic.
    pub(super) fn decode(raw: &[u8], limit: usize) -> Result<Self> {
        let inflated;
        let bytes = if gzip::is_gzip(raw) {
            inflated = gzip::decompress(raw, limit)
                .map_err(|e| Error::invalid(format!("failed to decompress jfr labels: {e}")))?;
            &inflated[..]
        } else {
            raw
        };
        let snapshot =
            LabelsSnapshot::decode(bytes).map_err(|e| Error::invalid(format!("failed to parse jfr labels: {e}")))?;
        Ok(Self { snapshot })
    }

    /// The string with id `id`; missing ids read as "".
    pub(super) fn string(&self, id: i64) -> &str {
        self.snapshot.strings.get(&id).map_or("", |s| s.as_str())
    }

    /// The (name, value) labels of context `id`; none for an unknown id.
    pub(super) fn labels(&self, id: u64) -> impl Iterator<Item = (&str, &str)> {
        let context = self.snapshot.contexts.get(&(id as i64));
        context.into_iter().flat_map(|c| c.labels.iter().map(|(&k, &v)| (self.string(k), self.string(v))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::BTreeMap;
    use alloc::vec::Vec;
    use kiln_proto::jfr::Context;

    #[test]
    fn resolves_context_labels() {
        let snapshot = LabelsSnapshot {
            contexts: BTreeMap::from([(7, Context { labels: BTreeMap::from([(1, 2), (3, 99)]) })]),
            strings: BTreeMap::from([(1, "thread_name".into()), (2, "pool-1".into()), (3, "k".into())]),
        };
        let labels = ContextLabels::decode(&snapshot.encode_to_vec(), 1 << 20).unwrap();
        let got: Vec<_> = labels.labels(7).collect();
        assert_eq!(got, [("thread_name", "pool-1"), ("k", "")]);
        assert_eq!(labels.labels(8).count(), 0);
        assert!(ContextLabels::decode(&[0xff, 0xff], 1 << 20).is_err());
    }
}
