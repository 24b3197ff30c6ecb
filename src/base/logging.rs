//! Logs that cannot be forged. Event data reaches log lines through `log` actions, render
//! errors, refused webhooks and delivery errors; a newline in an `email` field must not
//! start a line of its own that looks like hookflow wrote it. So the one place that writes
//! fields (the message included) escapes every control character, whatever logged it:
//! no call site can forget.

use std::fmt;

use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::format::{DefaultFields, Writer};

/// Formats fields as the default formatter does, then escapes control characters.
#[derive(Debug, Default)]
pub struct EscapedFields;

impl<'w> FormatFields<'w> for EscapedFields {
    fn format_fields<R: RecordFields>(&self, mut writer: Writer<'w>, fields: R) -> fmt::Result {
        let mut plain = String::new();
        DefaultFields::new().format_fields(Writer::new(&mut plain), fields)?;
        write_escaped(&mut writer, &plain)
    }
}

/// `text` with control characters (and the Unicode line separators) written as escapes:
/// `\n`, `\r`, `\t`, `\u{1b}`.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let _ = write_escaped(&mut out, text);
    out
}

fn write_escaped(out: &mut impl fmt::Write, text: &str) -> fmt::Result {
    for c in text.chars() {
        match c {
            '\n' => out.write_str("\\n")?,
            '\r' => out.write_str("\\r")?,
            '\t' => out.write_str("\\t")?,
            c if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') => {
                write!(out, "\\u{{{:x}}}", c as u32)?
            }
            c => out.write_char(c)?,
        }
    }
    Ok(())
}

/// The log filter: `HOOKFLOW_LOG`, else `RUST_LOG`, else `info`.
pub fn filter() -> tracing_subscriber::EnvFilter {
    use tracing_subscriber::EnvFilter;
    EnvFilter::try_from_env("HOOKFLOW_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info"))
}

/// Logs to stderr, escaped, filtered by [`filter`]. No colours: an escape sequence in a
/// field is escaped like any control character, so colours could not survive anyway.
pub fn init() {
    tracing_subscriber::fmt()
        .with_env_filter(filter())
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .fmt_fields(EscapedFields)
        .init();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_newline_in_a_field_or_message_stays_on_its_line() {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .fmt_fields(EscapedFields)
            .finish();
        let email = "x@y.z\n2026-01-01T00:00:00Z  INFO hookflow: admin logged in";
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(rule = "r", "sent to {email}");
            tracing::warn!(email, "\u{1b}[31mred\u{2028}");
        });
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].contains("sent to x@y.z\\n2026-01-01"), "{text}");
        assert!(!text.contains('\u{1b}') && !text.contains('\u{2028}'), "{text}");
        assert!(lines[1].contains(r#"email="x@y.z\n2026"#), "{text}");
    }

    #[test]
    fn escape_keeps_text_and_escapes_controls() {
        assert_eq!(escape("Ann & Co — ü"), "Ann & Co — ü");
        assert_eq!(escape("a\r\nb\tc\u{0}"), "a\\r\\nb\\tc\\u{0}");
    }
}
