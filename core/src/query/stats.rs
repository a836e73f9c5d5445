//! GetProfileStats: whether the tenant has data, and the times of its oldest
//! and newest profiles (ms). Found from the tenant's hour log, then the
//! profiles of the first and last hours only.

use kiln_proto::types::v1::{GetProfileStatsRequest, GetProfileStatsResponse};

use super::Context;
use crate::error::Result;
use crate::kv::KvStore;
use crate::store::HOUR_MS;

pub fn get_profile_stats<S: KvStore + ?Sized>(
    cx: &Context<'_, S>,
    _req: &GetProfileStatsRequest,
) -> Result<GetProfileStatsResponse> {
    let mut hours = cx.storage.hours()?;
    hours.sort_unstable();
    hours.dedup();
    // An hour whose writer crashed may hold nothing: look further in.
    let mut oldest = None;
    for &hour in &hours {
        if let Some((first, _)) = profile_times(cx, hour)? {
            oldest = Some(first);
            break;
        }
    }
    let Some(oldest) = oldest else { return Ok(GetProfileStatsResponse::default()) };
    let mut newest = oldest;
    for &hour in hours.iter().rev() {
        if let Some((_, last)) = profile_times(cx, hour)? {
            newest = last;
            break;
        }
    }
    Ok(GetProfileStatsResponse { data_ingested: true, oldest_profile_time: oldest, newest_profile_time: newest })
}

/// The first and last profile times stored in `hour`, if any.
fn profile_times<S: KvStore + ?Sized>(cx: &Context<'_, S>, hour: i64) -> Result<Option<(i64, i64)>> {
    let series = cx.storage.series(hour * HOUR_MS, (hour + 1) * HOUR_MS)?;
    let mut span: Option<(i64, i64)> = None;
    cx.storage.for_each_total(&series, |_, p| {
        let t = p.timestamp_ms;
        span = Some(span.map_or((t, t), |(lo, hi)| (lo.min(t), hi.max(t))));
    })?;
    Ok(span)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::{self, IngestLimits, RawProfile};
    use crate::pprof::tests::sample_profile;
    use crate::query::QueryLimits;
    use crate::store::{MemoryStore, Storage};
    use kiln_proto::types::v1::LabelPair;
    use prost::Message;

    const NOW: i64 = 1_800_000_000_000;

    #[test]
    fn oldest_and_newest_profile_of_the_tenant() {
        let kv = MemoryStore::default();
        let limits = QueryLimits::default();
        let stats = |tenant| {
            let cx = Context {
                storage: Storage::new(&kv, tenant),
                now_ms: NOW,
                limits: &limits,
                allow_utf8_label_names: false,
            };
            get_profile_stats(&cx, &GetProfileStatsRequest {}).unwrap()
        };
        assert_eq!(stats("t"), GetProfileStatsResponse::default());
        let labels = [LabelPair { name: "__name__".into(), value: "process_cpu".into() }];
        for t in [NOW - 3_000_000, NOW - 200_000, NOW - 3_500_000, NOW - 100_000] {
            let mut p = sample_profile();
            p.time_nanos = t * 1_000_000;
            let bytes = p.encode_to_vec();
            let raw = [RawProfile { labels: &labels, bytes: &bytes }];
            ingest::push(&Storage::new(&kv, "t"), &raw, NOW, &mut || [1; 16], &IngestLimits::default()).unwrap();
        }
        let want = GetProfileStatsResponse {
            data_ingested: true,
            oldest_profile_time: NOW - 3_500_000,
            newest_profile_time: NOW - 100_000,
        };
        assert_eq!(stats("t"), want);
        assert_eq!(stats("other"), GetProfileStatsResponse::default(), "per tenant");
    }
}
