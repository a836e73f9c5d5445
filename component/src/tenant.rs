//! Which tenant a request runs as (spec `ingest.md` §2), for every route.

use kiln_core::config::Settings;
use kiln_core::tenant::{self, DEFAULT_TENANT};

use crate::connect::ConnectError;
use crate::http::RequestHead;

/// The tenant of a request: `anonymous` in single-tenant mode, where
/// `X-Scope-OrgID` is ignored as Pyroscope ignores it; in multi-tenant mode
/// the header's tenant, which must be present and valid (401 otherwise).
pub fn of(head: &RequestHead, settings: &Settings) -> Result<String, ConnectError> {
    if !settings.multitenancy_enabled {
        return Ok(DEFAULT_TENANT.into());
    }
    let org_id = head.header("x-scope-orgid").unwrap_or_default();
    Ok(tenant::single(org_id)?.into())
}
