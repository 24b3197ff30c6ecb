//! "Did you mean …?" for unknown keys, operators, helpers and event types.

/// The closest candidate to `word`, when it is close enough to be a likely typo.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let word_lower = word.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| {
            (
                strsim::damerau_levenshtein(&word_lower, &c.to_ascii_lowercase()),
                c,
            )
        })
        .filter(|&(d, c)| d <= (c.len().max(word.len()) / 3).max(1) || c.starts_with(&word_lower))
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::did_you_mean;

    #[test]
    fn finds_close_typos_only() {
        let ops = ["eq", "ne", "starts_with", "ends_with", "matches", "not_in"];
        assert_eq!(did_you_mean("start_with", ops), Some("starts_with"));
        assert_eq!(did_you_mean("match", ops), Some("matches"));
        assert_eq!(did_you_mean("notin", ops), Some("not_in"));
        assert_eq!(did_you_mean("EQ", ops), Some("eq"));
        assert_eq!(did_you_mean("frobnicate", ops), None);
    }
}
