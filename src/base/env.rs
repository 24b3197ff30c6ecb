//! `${env:NAME}` substitution: secrets and per-deployment values stay out of git. Applied at
//! load time to every string of a rule or config; an unset variable is a load error, never
//! an empty string.

use std::borrow::Cow;

/// Replaces each `${env:NAME}` (or `${env:NAME:-fallback}`, the fallback taken when
/// `NAME` is unset or empty) in `text`; `$${` stays a literal `${`.
pub fn substitute(text: &str) -> Result<Cow<'_, str>, String> {
    substitute_with(text, |name| std::env::var(name).ok())
}

/// [`substitute`] with a chosen lookup (tests, and callers that escape the values).
pub fn substitute_with(text: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<Cow<'_, str>, String> {
    if !text.contains("${") {
        return Ok(Cow::Borrowed(text));
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        if rest[..start].ends_with('$') {
            out.push_str(&rest[..start - 1]);
            out.push_str("${");
            rest = &rest[start + 2..];
            continue;
        }
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("unclosed `${{` in `{text}`; write `${{env:NAME}}`"))?;
        let inner = &after[..end];
        let spec = inner.strip_prefix("env:").ok_or_else(|| {
            format!("unknown substitution `${{{inner}}}`; only `${{env:NAME}}` is supported")
        })?;
        let (name, default) = match spec.split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (spec, None),
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("invalid environment variable name `{name}`"));
        }
        // As a shell does, `:-` means "unset or empty": an empty variable (a deploy that
        // exports `X=` by mistake) takes the fallback rather than blanking the value.
        let value = match (lookup(name), default) {
            (Some(v), Some(d)) if v.is_empty() => d.to_owned(),
            (Some(v), _) => v,
            (None, Some(d)) => d.to_owned(),
            (None, None) => {
                return Err(format!(
                    "environment variable `{name}` is not set (used as `${{env:{name}}}`; write `${{env:{name}:-fallback}}` for a default)"
                ));
            }
        };
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(Cow::Owned(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(name: &str) -> Option<String> {
        match name {
            "TOKEN" => Some("s3cret".to_owned()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn an_empty_variable_takes_the_fallback_as_in_a_shell() {
        assert_eq!(substitute_with("${env:EMPTY:-pw}", lookup).unwrap(), "pw");
        assert_eq!(substitute_with("${env:UNSET:-pw}", lookup).unwrap(), "pw");
        assert_eq!(substitute_with("${env:TOKEN:-pw}", lookup).unwrap(), "s3cret");
        assert_eq!(substitute_with("[${env:EMPTY}]", lookup).unwrap(), "[]");
    }

    #[test]
    fn substitutes_and_reports_unset() {
        assert_eq!(
            substitute_with("Bearer ${env:TOKEN}", lookup).unwrap(),
            "Bearer s3cret"
        );
        assert!(matches!(
            substitute_with("plain", lookup).unwrap(),
            Cow::Borrowed(_)
        ));
        assert_eq!(
            substitute_with("cost $${env:TOKEN}", lookup).unwrap(),
            "cost ${env:TOKEN}"
        );
        let err = substitute_with("${env:NOPE}", lookup).unwrap_err();
        assert!(err.starts_with("environment variable `NOPE` is not set"), "{err}");
        assert_eq!(
            substitute_with("${env:NOPE:-https://x}/a", lookup).unwrap(),
            "https://x/a"
        );
        assert_eq!(substitute_with("${env:TOKEN:-x}", lookup).unwrap(), "s3cret");
        assert!(
            substitute_with("${env:TOKEN", lookup)
                .unwrap_err()
                .contains("unclosed")
        );
        assert!(
            substitute_with("${vault:x}", lookup)
                .unwrap_err()
                .contains("only `${env:NAME}`")
        );
    }
}
