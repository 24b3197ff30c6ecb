//! Handlebars templates as rules use them: strict, with our helpers (`helpers`), and
//! escaped only where the output is HTML.
//!
//! Two registries share the helpers: `plain` never escapes (subjects, text bodies, headers,
//! URLs, JSON leaves — a name `Ann & Co` stays `Ann & Co`), `html` escapes values (an
//! email's `html` body and `*.html.hbs` files). Both are strict: a variable missing from
//! the event is an error, not an empty string; `default` is the way to allow absence.

mod helpers;

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::Path;

use handlebars::template::{Parameter, TemplateElement};
use handlebars::{Handlebars, RenderError, RenderErrorReason, Template, no_escape};
use serde_json::{Map, Value};

pub use helpers::HELPERS;
use helpers::{BUILTIN_HELPERS, register_helpers};

use crate::base::suggest::did_you_mean;
use crate::event::Event;

/// A compiled template, registered under a unique name.
#[derive(Clone, Debug)]
pub struct Tpl {
    name: String,
    html: bool,
    source: String,
    /// When the whole template is one `{{path}}`, the path: a JSON leaf written that way
    /// keeps the value's type (a number stays a number).
    single_path: Option<String>,
}

impl Tpl {
    pub fn source(&self) -> &str {
        &self.source
    }
}

/// All templates of one rule set, rules' strings and files alike.
pub struct Templates {
    plain: Handlebars<'static>,
    html: Handlebars<'static>,
    next: usize,
    /// Template files by name: which of `.txt.hbs` / `.html.hbs` exist.
    files: BTreeMap<String, FilePair>,
    /// By registered template: the top-level fields it reads into (`Payload` of
    /// `{{Payload.tz}}`). Where one holds JSON text, the template sees it parsed.
    reads_into: HashMap<String, Vec<String>>,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct FilePair {
    pub text: bool,
    pub html: bool,
}

impl Default for Templates {
    fn default() -> Self {
        Self::new()
    }
}

impl Templates {
    pub fn new() -> Self {
        let mut plain = Handlebars::new();
        plain.set_strict_mode(true);
        plain.register_escape_fn(no_escape);
        let mut html = Handlebars::new();
        html.set_strict_mode(true);
        for reg in [&mut plain, &mut html] {
            register_helpers(reg);
        }
        Self {
            plain,
            html,
            next: 0,
            files: BTreeMap::new(),
            reads_into: HashMap::new(),
        }
    }

    /// Compiles `source`; the error says what is wrong and where inside the template.
    pub fn compile(&mut self, source: &str, html: bool) -> Result<Tpl, String> {
        self.next += 1;
        let name = format!("#{}", self.next);
        self.register(&name, source, html)?;
        Ok(Tpl {
            name,
            html,
            source: source.to_owned(),
            single_path: single_path(source),
        })
    }

    fn register(&mut self, name: &str, source: &str, html: bool) -> Result<(), String> {
        let template = Template::compile(source).map_err(|e| {
            let mut msg = format!("template does not parse: {}", e.reason());
            if let Some((line, col)) = e.pos() {
                let _ = write!(msg, " (template line {line}, column {col})");
            }
            msg
        })?;
        check_helpers(&template.elements)?;
        let mut fields = Vec::new();
        reads_into(&template.elements, &mut fields);
        if fields.is_empty() {
            self.reads_into.remove(name);
        } else {
            self.reads_into.insert(name.to_owned(), fields);
        }
        let registry = if html { &mut self.html } else { &mut self.plain };
        registry.register_template(name, template);
        Ok(())
    }

    /// Renders to text.
    pub fn render(&self, tpl: &Tpl, ctx: &Value) -> Result<String, String> {
        let registry = if tpl.html { &self.html } else { &self.plain };
        registry
            .render(&tpl.name, &*self.with_embedded(&tpl.name, ctx))
            .map_err(|e| explain_render_error(&e, &tpl.source))
    }

    /// `ctx` with the fields template `name` reads into parsed, where they hold JSON
    /// text (see `base::path`): `{{Payload.tz}}` reads Mailjet's `Payload` string. Only
    /// templates that read into a field pay for the copy.
    fn with_embedded<'c>(&self, name: &str, ctx: &'c Value) -> Cow<'c, Value> {
        let (Some(fields), Value::Object(map)) = (self.reads_into.get(name), ctx) else {
            return Cow::Borrowed(ctx);
        };
        let parsed: Vec<(&String, Value)> = fields
            .iter()
            .filter_map(|f| match map.get(f) {
                Some(Value::String(text)) => crate::base::path::embedded_json(text).map(|v| (f, v)),
                _ => None,
            })
            .collect();
        if parsed.is_empty() {
            return Cow::Borrowed(ctx);
        }
        let mut map = map.clone();
        for (field, value) in parsed {
            map.insert(field.clone(), value);
        }
        Cow::Owned(Value::Object(map))
    }

    /// Renders a JSON leaf: `"{{MessageID}}"` alone yields the value itself (type kept).
    pub fn render_value(&self, tpl: &Tpl, ctx: &Value) -> Result<Value, String> {
        if let Some(path) = &tpl.single_path {
            return lookup(&self.with_embedded(&tpl.name, ctx), path)
                .cloned()
                .ok_or_else(|| missing_message(path, &tpl.source));
        }
        self.render(tpl, ctx).map(Value::String)
    }

    /// Loads `NAME.txt.hbs` and `NAME.html.hbs` from `dir`; returns errors as (file,
    /// message). A file that fails keeps its last good text from `last_good`, which is
    /// updated with every file that loads.
    pub fn load_dir(&mut self, dir: &Path, last_good: &mut HashMap<String, String>) -> Vec<(String, String)> {
        let mut errors = Vec::new();
        let Ok(entries) = std::fs::read_dir(dir) else {
            last_good.clear();
            return errors;
        };
        let mut paths: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        let mut kept = HashMap::new();
        for path in paths {
            let Some(file_name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            let (name, html) = if let Some(n) = file_name.strip_suffix(".html.hbs") {
                (n, true)
            } else if let Some(n) = file_name.strip_suffix(".txt.hbs") {
                (n, false)
            } else {
                continue;
            };
            let shown = path.display().to_string();
            let result = std::fs::read_to_string(&path)
                .map_err(|e| format!("cannot read: {e}"))
                .and_then(|source| {
                    self.register(&file_key(name, html), &source, html)
                        .map(|()| source)
                });
            let loaded = match result {
                Ok(source) => Some(source),
                Err(msg) => {
                    errors.push((shown.clone(), msg));
                    last_good
                        .get(&shown)
                        .filter(|old| self.register(&file_key(name, html), old, html).is_ok())
                        .cloned()
                }
            };
            if let Some(source) = loaded {
                let pair = self.files.entry(name.to_owned()).or_default();
                if html {
                    pair.html = true
                } else {
                    pair.text = true
                }
                kept.insert(shown, source);
            }
        }
        *last_good = kept;
        errors
    }

    /// Which files exist for template `name`.
    pub fn file(&self, name: &str) -> Option<FilePair> {
        self.files.get(name).copied()
    }

    pub fn file_names(&self) -> impl Iterator<Item = &str> {
        self.files.keys().map(String::as_str)
    }

    /// Renders the `.txt.hbs` (html = false) or `.html.hbs` file of template `name`.
    pub fn render_file(&self, name: &str, html: bool, ctx: &Value) -> Result<String, String> {
        let registry = if html { &self.html } else { &self.plain };
        let ext = if html { "html" } else { "txt" };
        let key = file_key(name, html);
        registry
            .render(&key, &*self.with_embedded(&key, ctx))
            .map_err(|e| format!("in templates/{name}.{ext}.hbs: {}", explain_render_error(&e, "")))
    }
}

fn file_key(name: &str, html: bool) -> String {
    format!("file:{name}.{}", if html { "html" } else { "txt" })
}

/// The data a rule's templates see: the payload's fields at top level, plus `event.*` and
/// `rule.id`. `extra` adds fields such as a threshold's `group`, `count`, `total`, `ratio`.
pub fn context(ev: &Event, rule_id: &str, extra: Option<&Map<String, Value>>) -> Value {
    let mut map = match &ev.data {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    map.insert(
        "event".into(),
        serde_json::json!({
            "type": ev.kind,
            "source": ev.source,
            "id": ev.id,
            "time": ev.time.to_rfc3339(),
        }),
    );
    map.insert("rule".into(), serde_json::json!({ "id": rule_id }));
    if let Some(extra) = extra {
        for (k, v) in extra {
            map.insert(k.clone(), v.clone());
        }
    }
    Value::Object(map)
}

fn lookup<'v>(ctx: &'v Value, path: &str) -> Option<&'v Value> {
    let path = match path {
        "this" => return Some(ctx),
        p => p.strip_prefix("this.").unwrap_or(p),
    };
    path.split('.').try_fold(ctx, |v, seg| match v {
        Value::Object(m) => m.get(seg),
        Value::Array(a) => a.get(seg.parse::<usize>().ok()?),
        _ => None,
    })
}

/// The path of a template that is exactly one `{{path}}`: nothing around it, not even
/// a space (`" {{flag}} "` is text, and renders as text). `this` is the whole context.
fn single_path(source: &str) -> Option<String> {
    let inner = source.strip_prefix("{{")?.strip_suffix("}}")?.trim();
    let ok = !inner.is_empty()
        && inner
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | '-'))
        && !HELPERS.contains(&inner)
        && !inner.starts_with('.')
        && !inner.ends_with('.')
        && !inner.contains("..");
    ok.then(|| inner.to_owned())
}

/// The top-level fields `elements` read into: the first name of every path with a step
/// after it, in expressions, helper parameters and hashes, subexpressions and blocks.
fn reads_into(elements: &[TemplateElement], out: &mut Vec<String>) {
    for element in elements {
        let ht = match element {
            TemplateElement::Expression(ht)
            | TemplateElement::HtmlExpression(ht)
            | TemplateElement::HelperBlock(ht) => ht,
            _ => continue,
        };
        for p in std::iter::once(&ht.name)
            .chain(&ht.params)
            .chain(ht.hash.values())
        {
            match p {
                Parameter::Path(handlebars::Path::Relative((segs, _))) => {
                    let names: Vec<&str> = segs
                        .iter()
                        .map_while(|s| match s {
                            handlebars::PathSeg::Named(n) => Some(n.as_str()),
                            _ => None,
                        })
                        .collect();
                    let names = names.strip_prefix(&["this"]).unwrap_or(&names);
                    if let [first, _, ..] = names
                        && !out.iter().any(|o| o == first)
                    {
                        out.push((*first).to_owned());
                    }
                }
                Parameter::Subexpression(sub) => reads_into(std::slice::from_ref(sub.as_element()), out),
                _ => {}
            }
        }
        for inner in [&ht.template, &ht.inverse].into_iter().flatten() {
            reads_into(&inner.elements, out);
        }
    }
}

/// Refuses unknown helpers at load time, with a did-you-mean, instead of at send time.
fn check_helpers(elements: &[TemplateElement]) -> Result<(), String> {
    for element in elements {
        let ht = match element {
            TemplateElement::Expression(ht)
            | TemplateElement::HtmlExpression(ht)
            | TemplateElement::HelperBlock(ht) => ht,
            TemplateElement::PartialExpression(_) | TemplateElement::PartialBlock(_) => {
                return Err(
                    "partials (`{{> name}}`) are not supported; use `template:` files for shared bodies"
                        .into(),
                );
            }
            TemplateElement::DecoratorExpression(_) | TemplateElement::DecoratorBlock(_) => {
                return Err("decorators (`{{* name}}`) are not supported".into());
            }
            _ => continue,
        };
        let is_call = ht.block || !ht.params.is_empty() || !ht.hash.is_empty();
        if let (true, Parameter::Name(name)) = (is_call, &ht.name)
            && !HELPERS.contains(&name.as_str())
            && !BUILTIN_HELPERS.contains(&name.as_str())
        {
            let mut msg = format!("unknown helper `{name}`");
            if let Some(best) = did_you_mean(name, HELPERS.iter().chain(BUILTIN_HELPERS).copied()) {
                let _ = write!(msg, " — did you mean `{best}`?");
            }
            let _ = write!(msg, " (helpers: {})", HELPERS.join(", "));
            return Err(msg);
        }
        for p in ht.params.iter().chain(ht.hash.values()) {
            if let Parameter::Subexpression(sub) = p {
                check_helpers(std::slice::from_ref(sub.as_element()))?;
            }
        }
        for inner in [&ht.template, &ht.inverse].into_iter().flatten() {
            check_helpers(&inner.elements)?;
        }
    }
    Ok(())
}

fn missing_message(path: &str, source: &str) -> String {
    let mut msg = format!("the event has no field `{path}`");
    if !source.is_empty() {
        let _ = write!(msg, " (in template `{source}`)");
    }
    let _ = write!(msg, "; if it may be absent write `{{{{default {path} \"…\"}}}}`");
    msg
}

fn explain_render_error(err: &RenderError, source: &str) -> String {
    match err.reason() {
        RenderErrorReason::MissingVariable(Some(path)) => missing_message(path, source),
        RenderErrorReason::MissingVariable(None) => missing_message("?", source),
        RenderErrorReason::NestedError(inner) => inner.to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(source: &str, ctx: Value) -> Result<String, String> {
        let mut t = Templates::new();
        let tpl = t.compile(source, false)?;
        t.render(&tpl, &ctx)
    }

    #[test]
    fn helpers() {
        let ctx =
            json!({"email": "Ann@Example.COM", "name": "Ann & Co", "t": 1433103519, "r": 0.625, "n": null});
        assert_eq!(render("{{domain email}}", ctx.clone()).unwrap(), "example.com");
        assert_eq!(
            render("{{lower email}} {{upper name}}", ctx.clone()).unwrap(),
            "ann@example.com ANN & CO"
        );
        assert_eq!(
            render("{{default missing \"there\"}}", ctx.clone()).unwrap(),
            "there"
        );
        assert_eq!(
            render("{{default n \"x\"}}|{{default name \"x\"}}", ctx.clone()).unwrap(),
            "x|Ann & Co"
        );
        assert_eq!(render("{{json name}}", ctx.clone()).unwrap(), "\"Ann & Co\"");
        assert_eq!(
            render("{{urlencode name}}", ctx.clone()).unwrap(),
            "Ann%20%26%20Co"
        );
        assert_eq!(
            render("{{urlencode x}}", json!({"x": "a-b.c_d~e/f?g=h"})).unwrap(),
            "a-b.c_d~e%2Ff%3Fg%3Dh"
        );
        assert_eq!(render("{{date t}}", ctx.clone()).unwrap(), "2015-05-31");
        assert_eq!(render("{{date t \"%H:%M\"}}", ctx.clone()).unwrap(), "20:18");
        // In a zone: the hour there and its abbreviation, summer time included (2015-05-31
        // 20:18 UTC is 22:18 CEST in Paris; in January Paris is UTC+1, New York UTC-5).
        assert_eq!(
            render("{{date t \"%H:%M %Z\" \"Europe/Paris\"}}", ctx.clone()).unwrap(),
            "22:18 CEST"
        );
        let winter = json!({"t": "2027-01-15T08:00:00Z", "tz": "America/New_York"});
        assert_eq!(
            render(
                "{{date t \"%H:%M %Z\" \"Europe/Paris\"}} {{date t \"%H:%M %Z\" tz}}",
                winter
            )
            .unwrap(),
            "09:00 CET 03:00 EST"
        );
        let err = render("{{date t \"%H\" \"Europe/Pari\"}}", ctx.clone()).unwrap_err();
        assert!(err.contains("did you mean `Europe/Paris`"), "{err}");
        assert_eq!(
            render("{{percent r}} {{percent r 1}}", ctx.clone()).unwrap(),
            "62% 62.5%"
        );
        assert_eq!(render("{{upper (domain email)}}", ctx).unwrap(), "EXAMPLE.COM");
    }

    #[test]
    fn templates_read_into_json_held_by_strings() {
        let ctx =
            json!({"Payload": "{\"tz\":\"Europe/Paris\",\"plan\":\"pro\"}", "t": "2027-01-15T08:00:00Z"});
        assert_eq!(render("{{Payload.plan}}", ctx.clone()).unwrap(), "pro");
        assert_eq!(
            render(
                "{{date t \"%H:%M\" Payload.tz}} {{upper (lower Payload.plan)}}",
                ctx.clone()
            )
            .unwrap(),
            "09:00 PRO"
        );
        assert_eq!(
            render("{{#if Payload.plan}}{{Payload.plan}}{{/if}}", ctx.clone()).unwrap(),
            "pro"
        );
        // A template that does not read into it sees the string.
        assert_eq!(
            render("{{Payload}}", ctx.clone()).unwrap(),
            "{\"tz\":\"Europe/Paris\",\"plan\":\"pro\"}"
        );
        let mut t = Templates::new();
        let tpl = t.compile("{{Payload.plan}}", false).unwrap();
        assert_eq!(t.render_value(&tpl, &ctx).unwrap(), json!("pro"));
        let err = render("{{Payload.nope}}", ctx).unwrap_err();
        assert!(err.contains("Payload.nope"), "{err}");
    }

    #[test]
    fn strict_missing_variables() {
        let err = render("Hi {{name}}", json!({})).unwrap_err();
        assert!(err.contains("no field `name`"), "{err}");
        let err = render("{{lower name}}", json!({})).unwrap_err();
        assert!(err.contains("no field `name`"), "{err}");
        let err = render("{{geo.country}}", json!({"geo": {}})).unwrap_err();
        assert!(err.contains("geo.country"), "{err}");
        // `if` may test a field that is absent.
        assert_eq!(
            render("{{#if coupon}}yes{{else}}no{{/if}}", json!({})).unwrap(),
            "no"
        );
    }

    #[test]
    fn helper_errors_are_clear() {
        assert!(
            render("{{domain x}}", json!({"x": "nope"}))
                .unwrap_err()
                .contains("not an email address")
        );
        assert!(
            render("{{date x}}", json!({"x": "soon"}))
                .unwrap_err()
                .contains("not a time")
        );
        let err = Templates::new().compile("{{lowr email}}", false).unwrap_err();
        assert!(
            err.contains("unknown helper `lowr` — did you mean `lower`?"),
            "{err}"
        );
        let err = Templates::new().compile("a {{> footer}}", false).unwrap_err();
        assert!(err.contains("partials"), "{err}");
        let err = Templates::new().compile("{{#if x}}", false).unwrap_err();
        assert!(err.contains("template does not parse"), "{err}");
    }

    #[test]
    fn escaping_only_in_html() {
        let mut t = Templates::new();
        let ctx = json!({"name": "Ann & Co <x>"});
        let plain = t.compile("{{name}}", false).unwrap();
        let html = t.compile("<b>{{name}}</b>", true).unwrap();
        assert_eq!(t.render(&plain, &ctx).unwrap(), "Ann & Co <x>");
        assert_eq!(t.render(&html, &ctx).unwrap(), "<b>Ann &amp; Co &lt;x&gt;</b>");
    }

    #[test]
    fn single_path_keeps_json_types() {
        let mut t = Templates::new();
        let id: Value =
            serde_json::from_str(r#"{"MessageID": 19421777396190490, "geo": {"c": "US"}}"#).unwrap();
        let tpl = t.compile("{{MessageID}}", false).unwrap();
        assert_eq!(t.render_value(&tpl, &id).unwrap(), id["MessageID"]);
        let tpl = t.compile("{{ geo.c }}", false).unwrap();
        assert_eq!(t.render_value(&tpl, &id).unwrap(), json!("US"));
        let tpl = t.compile("id {{MessageID}}", false).unwrap();
        assert_eq!(t.render_value(&tpl, &id).unwrap(), json!("id 19421777396190490"));
        let tpl = t.compile("{{nope}}", false).unwrap();
        assert!(t.render_value(&tpl, &id).is_err());
        // Only an exact `{{path}}` keeps the type: around it is text.
        let flag = json!({"flag": true, "n": 7});
        let tpl = t.compile(" {{flag}} ", false).unwrap();
        assert_eq!(t.render_value(&tpl, &flag).unwrap(), json!(" true "));
        let tpl = t.compile("{{this}}", false).unwrap();
        assert_eq!(t.render_value(&tpl, &flag).unwrap(), flag);
        let tpl = t.compile("{{this.n}}", false).unwrap();
        assert_eq!(t.render_value(&tpl, &flag).unwrap(), json!(7));
    }
}
