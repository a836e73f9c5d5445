//! The binary formats of old Pyroscope agents: `tree`
//! (`binary/octet-stream+tree`) and `trie` (`binary/octet-stream+trie`).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use super::stacks::StackCounts;

/// Pyroscope's `max_profile_symbol_value_length` and
/// `max_profile_stacktrace_samples`, which bound tree nodes.
const MAX_NAME_LEN: u64 = 65_535;
const MAX_CHILDREN: u64 = 16_000;

/// A tree: pre-order nodes `uvarint nameLen, name, uvarint self, uvarint
/// childCount`; the first node is the root, whose name is not a frame.
pub fn parse_tree(body: &[u8]) -> Result<StackCounts, String> {
    let mut stacks = StackCounts::default();
    if body.is_empty() {
        return Ok(stacks);
    }
    let mut input = Reader(body);
    let mut path: Vec<String> = Vec::new();
    // Children still to read at each depth; the root is depth 0.
    let mut pending: Vec<u64> = Vec::new();
    loop {
        let name_len = input.uvarint()?;
        if name_len > MAX_NAME_LEN {
            return Err(format!("node name too long: {name_len}"));
        }
        let name = String::from_utf8_lossy(input.bytes(name_len)?).into_owned();
        let self_value = input.uvarint()?;
        let children = input.uvarint()?;
        if children > MAX_CHILDREN {
            return Err(format!("too many children: {children}"));
        }
        if let Some(n) = pending.last_mut() {
            *n -= 1;
            path.push(name);
        }
        if self_value > 0 {
            stacks.add(path.iter().map(String::as_str), self_value as i64);
        }
        pending.push(children);
        // Climb out of finished subtrees.
        while pending.last() == Some(&0) {
            pending.pop();
            path.pop();
        }
        if pending.is_empty() {
            return Ok(stacks);
        }
    }
}

/// A trie: depth-first nodes `uvarint labelLen, label, uvarint value,
/// uvarint childCount`; a node's key is the concatenation of the labels on
/// its path, a `;`-separated stack.
pub fn parse_trie(body: &[u8]) -> Result<StackCounts, String> {
    let mut stacks = StackCounts::default();
    let mut input = Reader(body);
    let mut key: Vec<u8> = Vec::new();
    // (key length before this node, children still to read) per open node.
    let mut open: Vec<(usize, u64)> = Vec::new();
    while !input.0.is_empty() || !open.is_empty() {
        let label_len = input.uvarint()?;
        let label = input.bytes(label_len)?;
        let value = input.uvarint()?;
        let children = input.uvarint()?;
        if let Some((_, n)) = open.last_mut() {
            *n -= 1;
        }
        open.push((key.len(), children));
        key.extend_from_slice(label);
        if value > 0 {
            let stack = String::from_utf8_lossy(&key);
            stacks.add(stack.split(';'), value as i64);
        }
        while let Some(&(len, 0)) = open.last() {
            key.truncate(len);
            open.pop();
        }
    }
    Ok(stacks)
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn uvarint(&mut self) -> Result<u64, String> {
        let mut value = 0u64;
        for (i, &b) in self.0.iter().enumerate().take(10) {
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                self.0 = &self.0[i + 1..];
                return Ok(value);
            }
        }
        Err(if self.0.len() < 10 { "unexpected EOF".into() } else { "varint overflows a 64-bit integer".into() })
    }

    fn bytes(&mut self, n: u64) -> Result<&'a [u8], String> {
        if n > self.0.len() as u64 {
            return Err("unexpected EOF".into());
        }
        let (head, rest) = self.0.split_at(n as usize);
        self.0 = rest;
        Ok(head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::legacy::stacks::Metric;
    use crate::pprof::collapsed;
    use alloc::vec;

    fn node(out: &mut Vec<u8>, name: &str, value: u8, children: u8) {
        out.extend([name.len() as u8]);
        out.extend(name.as_bytes());
        out.extend([value, children]);
    }

    fn stacks(c: StackCounts) -> Vec<(String, i64)> {
        collapsed(&c.into_profile(&Metric::for_suffix("alloc_objects").unwrap(), 100, 0), 0)
    }

    #[test]
    fn tree_nodes_in_pre_order() {
        let mut b = Vec::new();
        node(&mut b, "root", 0, 2);
        node(&mut b, "a", 1, 1);
        node(&mut b, "b", 2, 0);
        node(&mut b, "c", 3, 0);
        assert_eq!(stacks(parse_tree(&b).unwrap()), [("a", 1), ("a;b", 2), ("c", 3)].map(|(s, v)| (s.into(), v)));
        assert!(parse_tree(&b[..b.len() - 1]).is_err());
        assert!(parse_tree(&[0x80; 11]).is_err());
        let mut wide = Vec::new();
        wide.extend([0, 0, 0x81, 0xfd, 0x00]);
        assert!(parse_tree(&wide).err().unwrap().contains("too many children"));
    }

    #[test]
    fn trie_keys_concatenate_labels() {
        let mut b = Vec::new();
        node(&mut b, "", 0, 1);
        node(&mut b, "a;", 0, 2);
        node(&mut b, "b", 2, 1);
        node(&mut b, "c;d", 1, 0);
        node(&mut b, "e", 4, 0);
        let got = stacks(parse_trie(&b).unwrap());
        assert_eq!(got, vec![("a;b".into(), 2), ("a;bc;d".into(), 1), ("a;e".into(), 4)]);
        assert!(parse_trie(&b[..3]).is_err());
        assert_eq!(stacks(parse_trie(&[]).unwrap()), Vec::<(String, i64)>::new());
    }
}
