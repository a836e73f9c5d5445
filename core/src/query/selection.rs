//! What a merge query selects beyond series and time: profiles by id,
//! samples by span id, stacks by call site (spec `query.md` §8–9).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use kiln_proto::querier::v1::SelectMergeStacktracesRequest;

use crate::FastSet;
use crate::error::{Error, Result};
use crate::ingest::{parse_span_id, parse_trace_id};
use crate::segment::{SampleFilter, StoredProfile};
use crate::store::Detail;

/// The selectors of one merge request, parsed once.
#[derive(Debug, Default)]
pub(super) struct Selection {
    profile_ids: Option<FastSet<[u8; 16]>>,
    spans: Option<FastSet<u64>>,
    traces: Option<FastSet<u128>>,
    call_site: Vec<String>,
}

impl Selection {
    /// Parses the selectors of `req`. Selectors kiln cannot apply are
    /// refused: answering without them would be a wrong answer.
    pub(super) fn of(req: &SelectMergeStacktracesRequest) -> Result<Self> {
        let profile_ids = match req.profile_id_selector.is_empty() {
            true => None,
            false => Some(req.profile_id_selector.iter().map(|s| parse_profile_id(s)).collect::<Result<_>>()?),
        };
        let call_site = req
            .stack_trace_selector
            .as_ref()
            .map(|s| s.call_site.iter().map(|l| l.name.clone()).collect())
            .unwrap_or_default();
        Ok(Self {
            profile_ids,
            spans: span_set(&req.span_selector)?,
            traces: trace_set(&req.trace_id_selector)?,
            call_site,
        })
    }

    /// Whether the profile is one of the selected ids (all are without a
    /// profile id selector).
    pub(super) fn keeps(&self, profile: &StoredProfile) -> bool {
        self.profile_ids
            .as_ref()
            .is_none_or(|ids| <[u8; 16]>::try_from(&profile.id[..]).is_ok_and(|id| ids.contains(&id)))
    }

    /// How much of each stored profile the selection needs: ids, spans and
    /// traces are per profile or per sample, so pre-summed profiles will not do.
    pub(super) fn detail(&self) -> Detail {
        if self.profile_ids.is_some() || self.spans.is_some() || self.traces.is_some() {
            Detail::Profiles
        } else {
            Detail::Merged
        }
    }

    /// The per-sample part: span ids and call site.
    pub(super) fn samples(&self) -> SampleFilter<'_> {
        SampleFilter { spans: self.spans.as_ref(), traces: self.traces.as_ref(), call_site: &self.call_site }
    }

    /// The same selection without the call site (Go PGO profiles ignore it).
    pub(super) fn without_call_site(mut self) -> Self {
        self.call_site.clear();
        self
    }
}

/// The span ids to keep, if any were asked for: 16 hex digits each, matched
/// by value (so case does not matter).
fn span_set(selector: &[String]) -> Result<Option<FastSet<u64>>> {
    if selector.is_empty() {
        return Ok(None);
    }
    selector
        .iter()
        .map(|s| match parse_span_id(s) {
            0 if s.len() != 16 || u64::from_str_radix(s, 16).is_err() => {
                Err(Error::invalid(format!("invalid span id {s:?}: want 16 hex digits")))
            }
            id => Ok(id),
        })
        .collect::<Result<FastSet<u64>>>()
        .map(Some)
}

/// The trace ids to keep, if any were asked for: 32 hex digits each.
fn trace_set(selector: &[String]) -> Result<Option<FastSet<u128>>> {
    if selector.is_empty() {
        return Ok(None);
    }
    selector
        .iter()
        .map(|s| match parse_trace_id(s) {
            0 if s.len() != 32 || u128::from_str_radix(s, 16).is_err() => {
                Err(Error::invalid(format!("invalid trace id {s:?}: want 32 hex digits")))
            }
            id => Ok(id),
        })
        .collect::<Result<FastSet<u128>>>()
        .map(Some)
}

/// A profile id in the canonical UUID form (`8-4-4-4-12` hex digits, any
/// case), as exemplars print them; braces and `urn:uuid:` are accepted as Go's
/// `uuid.Parse` does.
fn parse_profile_id(s: &str) -> Result<[u8; 16]> {
    let invalid = || Error::invalid(format!("invalid profile id {s:?}: want a UUID"));
    let t = s.strip_prefix("urn:uuid:").unwrap_or(s);
    let t = t.strip_prefix('{').and_then(|t| t.strip_suffix('}')).unwrap_or(t);
    let dashed = t.len() == 36 && [8, 13, 18, 23].iter().all(|&i| t.as_bytes()[i] == b'-');
    if !dashed && t.len() != 32 {
        return Err(invalid());
    }
    let mut digits = t.bytes().filter(|&b| b != b'-' || !dashed);
    let mut id = [0u8; 16];
    for byte in &mut id {
        let (Some(hi), Some(lo)) = (digits.next(), digits.next()) else { return Err(invalid()) };
        let hex = |b: u8| (b as char).to_digit(16).ok_or_else(invalid);
        *byte = (hex(hi)? << 4 | hex(lo)?) as u8;
    }
    if digits.next().is_some() {
        return Err(invalid());
    }
    Ok(id)
}

/// A stored profile id as a UUID string (lower case, dashed).
pub(super) fn profile_id_string(id: &[u8]) -> String {
    let mut out = String::with_capacity(36);
    for (i, b) in id.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        out.push_str(&format!("{b:02x}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn profile_ids_round_trip() {
        let id = [0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0x4d, 0xef, 0x80, 1, 2, 3, 4, 5, 6, 7];
        let s = profile_id_string(&id);
        assert_eq!(s, "12345678-9abc-4def-8001-020304050607");
        assert_eq!(parse_profile_id(&s).unwrap(), id);
        assert_eq!(parse_profile_id(&s.to_uppercase()).unwrap(), id);
        assert_eq!(parse_profile_id(&format!("{{{s}}}")).unwrap(), id);
        assert_eq!(parse_profile_id("123456789abc4def8001020304050607").unwrap(), id);
        for bad in ["", "1234", "12345678-9abc-4def-8001-02030405060g", "12345678-9abc-4def-8001-0203040506070"] {
            assert!(parse_profile_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn selection_parses_and_refuses() {
        let mut req = SelectMergeStacktracesRequest {
            span_selector: vec!["00000000000000FF".into()],
            profile_id_selector: vec!["12345678-9abc-4def-8001-020304050607".into()],
            ..Default::default()
        };
        let sel = Selection::of(&req).unwrap();
        assert!(sel.samples().spans.unwrap().contains(&0xff));
        let other = StoredProfile { id: vec![0; 16], ..Default::default() };
        assert!(!sel.keeps(&other));
        req.span_selector = vec!["xyz".into()];
        assert!(Selection::of(&req).is_err());
        req.span_selector.clear();
        req.trace_id_selector = vec!["0123456789ABCDEF0123456789abcdef".into()];
        let sel = Selection::of(&req).unwrap();
        assert!(sel.samples().traces.unwrap().contains(&0x0123456789abcdef0123456789abcdef));
        req.trace_id_selector = vec!["0123".into()];
        assert!(Selection::of(&req).is_err());
    }
}
