//! The event-type index: an event only meets the rules that listen to its type.

use std::collections::HashMap;

use super::{On, Rule};

pub(super) struct Index {
    /// Rule positions (ascending, i.e. id order) per event type.
    by_type: HashMap<String, Vec<u32>>,
    /// Rules with `on: "*"`.
    any: Vec<u32>,
}

impl Index {
    pub fn build(rules: &[Rule]) -> Self {
        let mut by_type: HashMap<String, Vec<u32>> = HashMap::new();
        let mut any = Vec::new();
        for (i, rule) in rules.iter().enumerate() {
            let i = i as u32;
            match &rule.on {
                On::Any => any.push(i),
                On::Types(types) => {
                    for t in types {
                        let list = by_type.entry(t.clone()).or_default();
                        if list.last() != Some(&i) {
                            list.push(i);
                        }
                    }
                }
            }
        }
        Self { by_type, any }
    }

    /// Positions of the rules for `kind`, merged in ascending order without allocating.
    pub fn candidates<'a>(&'a self, kind: &str) -> impl Iterator<Item = u32> + 'a {
        let typed = self.by_type.get(kind).map_or(&[][..], Vec::as_slice);
        Merge {
            a: typed,
            b: &self.any,
        }
    }
}

/// Merges two ascending slices.
struct Merge<'a> {
    a: &'a [u32],
    b: &'a [u32],
}

impl Iterator for Merge<'_> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        match (self.a.first(), self.b.first()) {
            (Some(&x), Some(&y)) if x <= y => {
                self.a = &self.a[1..];
                Some(x)
            }
            (_, Some(&y)) => {
                self.b = &self.b[1..];
                Some(y)
            }
            (Some(&x), None) => {
                self.a = &self.a[1..];
                Some(x)
            }
            (None, None) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Merge;

    #[test]
    fn merge_keeps_order() {
        let m: Vec<u32> = Merge {
            a: &[0, 3, 4],
            b: &[1, 2, 5],
        }
        .collect();
        assert_eq!(m, vec![0, 1, 2, 3, 4, 5]);
        let m: Vec<u32> = Merge { a: &[], b: &[7] }.collect();
        assert_eq!(m, vec![7]);
    }
}
