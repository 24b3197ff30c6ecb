//! The event-type index: an event only meets the rules that listen to its type.
//!
//! Each type's bucket holds its own copy of its rules' compiled conditions, built bucket
//! by bucket, so matching walks memory laid out in the order it reads it. With thousands
//! of rules, pointer-chasing into conditions scattered over the heap (rules of one type
//! sit seven apart in id order) cost more than evaluating them; see docs/benchmarks.md.

use std::collections::HashMap;

use super::condition::Cond;
use super::{On, Rule};

/// What matching needs of one rule, in bucket order.
pub(super) struct Entry {
    /// The rule's position in the rule set (id order).
    pub rule: u32,
    pub enabled: bool,
    pub source: Option<Box<str>>,
    pub when: Cond,
}

pub(super) struct Index {
    by_type: HashMap<String, Vec<Entry>>,
    /// Rules with `on: "*"`.
    any: Vec<Entry>,
}

impl Index {
    pub fn build(rules: &[Rule]) -> Self {
        let mut positions: HashMap<&str, Vec<u32>> = HashMap::new();
        let mut any_positions = Vec::new();
        for (i, rule) in rules.iter().enumerate() {
            match &rule.on {
                On::Any => any_positions.push(i as u32),
                On::Types(types) => {
                    for t in types {
                        let list = positions.entry(t.as_str()).or_default();
                        if list.last() != Some(&(i as u32)) {
                            list.push(i as u32);
                        }
                    }
                }
            }
        }
        let bucket = |list: &[u32]| -> Vec<Entry> {
            list.iter()
                .map(|&i| {
                    let rule = &rules[i as usize];
                    Entry {
                        rule: i,
                        enabled: rule.enabled,
                        source: rule.source.as_deref().map(Box::from),
                        when: rule.when.clone(),
                    }
                })
                .collect()
        };
        let by_type = positions
            .iter()
            .map(|(t, list)| ((*t).to_owned(), bucket(list)))
            .collect();
        Self {
            by_type,
            any: bucket(&any_positions),
        }
    }

    /// The entries for `kind`, merged in rule order without allocating.
    pub fn entries<'a>(&'a self, kind: &str) -> impl Iterator<Item = &'a Entry> + use<'a> {
        let typed = self.by_type.get(kind).map_or(&[][..], Vec::as_slice);
        Merge {
            a: typed,
            b: &self.any,
        }
    }
}

/// Merges two slices ascending by rule position.
struct Merge<'a> {
    a: &'a [Entry],
    b: &'a [Entry],
}

impl<'a> Iterator for Merge<'a> {
    type Item = &'a Entry;

    fn next(&mut self) -> Option<&'a Entry> {
        let take_a = match (self.a.first(), self.b.first()) {
            (Some(x), Some(y)) => x.rule <= y.rule,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => return None,
        };
        let side = if take_a { &mut self.a } else { &mut self.b };
        let (head, rest) = side.split_first()?;
        *side = rest;
        Some(head)
    }
}

#[cfg(test)]
mod tests {
    use super::{Cond, Entry, Merge};

    fn entries(positions: &[u32]) -> Vec<Entry> {
        positions
            .iter()
            .map(|&rule| Entry {
                rule,
                enabled: true,
                source: None,
                when: Cond::All(Vec::new()),
            })
            .collect()
    }

    #[test]
    fn merge_keeps_order() {
        let (a, b) = (entries(&[0, 3, 4]), entries(&[1, 2, 5]));
        let m: Vec<u32> = Merge { a: &a, b: &b }.map(|e| e.rule).collect();
        assert_eq!(m, vec![0, 1, 2, 3, 4, 5]);
        let (a, b) = (entries(&[]), entries(&[7]));
        let m: Vec<u32> = Merge { a: &a, b: &b }.map(|e| e.rule).collect();
        assert_eq!(m, vec![7]);
    }
}
