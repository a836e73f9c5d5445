//! Profile type IDs: `name:sample_type:sample_unit:period_type:period_unit`.

use alloc::format;
use alloc::string::{String, ToString};

use crate::error::{Error, Result};
use kiln_proto::types::v1 as types;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProfileType {
    pub name: String,
    pub sample_type: String,
    pub sample_unit: String,
    pub period_type: String,
    pub period_unit: String,
}

impl ProfileType {
    /// Parses an ID as queries give it: five parts, or six with a trailing
    /// `:delta` that Pyroscope ignores.
    pub fn parse(id: &str) -> Result<Self> {
        let parts: alloc::vec::Vec<&str> = id.split(':').collect();
        if parts.len() != 5 && parts.len() != 6 {
            return Err(Error::invalid(format!(
                "profile-type selection must be of the form <name>:<sample-type>:<sample-unit>:<period-type>:<period-unit>(:delta), got({}): {:?}",
                parts.len(),
                id
            )));
        }
        Ok(Self {
            name: parts[0].to_string(),
            sample_type: parts[1].to_string(),
            sample_unit: parts[2].to_string(),
            period_type: parts[3].to_string(),
            period_unit: parts[4].to_string(),
        })
    }

    pub fn id(&self) -> String {
        format!("{}:{}:{}:{}:{}", self.name, self.sample_type, self.sample_unit, self.period_type, self.period_unit)
    }

    pub fn to_proto(&self) -> types::ProfileType {
        types::ProfileType {
            id: self.id(),
            name: self.name.clone(),
            sample_type: self.sample_type.clone(),
            sample_unit: self.sample_unit.clone(),
            period_type: self.period_type.clone(),
            period_unit: self.period_unit.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_print() {
        let t = ProfileType::parse("process_cpu:cpu:nanoseconds:cpu:nanoseconds").unwrap();
        assert_eq!(t.sample_type, "cpu");
        assert_eq!(t.id(), "process_cpu:cpu:nanoseconds:cpu:nanoseconds");
        let t = ProfileType::parse("memory:alloc_space:bytes::").unwrap();
        assert_eq!(t.period_type, "");
        assert!(ProfileType::parse("memory:alloc_space:bytes:space:bytes:delta").is_ok());
        let err = ProfileType::parse("cpu").unwrap_err().to_string();
        assert!(err.contains("got(1)"), "{err}");
        assert!(ProfileType::parse("").is_err());
    }
}
