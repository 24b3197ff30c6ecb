//! Stage two: raw rules (as written) into [`Rule`]s. Each check reports through [`Cx`]
//! and carries on, so one run lists every problem of a file.

use std::fmt::Write as _;

use serde_json::Value;

use super::condition::{Cond, compile_when};
use super::file::RawRule;
use super::stateful::{Correlation, Once, Threshold};
use super::{On, Rule, TestCase};
use crate::actions;
use crate::base::diag::Cx;
use crate::base::suggest::did_you_mean;
use crate::base::yaml::{join_index, join_key};
use crate::template::Templates;

/// Compiles one rule found at `base` (`""` for a one-rule file, `rules[2]` otherwise).
pub(super) fn compile_rule(
    cx: &mut Cx,
    warnings: &mut Vec<super::Diagnostic>,
    t: &mut Templates,
    base: &str,
    default_id: String,
    raw: RawRule,
) -> Option<Rule> {
    let errors_before = cx.errors.len();
    cx.reads_contact = false;
    let id = raw.id.clone().unwrap_or(default_id);
    cx.rule = Some(id.clone());
    if id.trim().is_empty() || id.chars().any(char::is_whitespace) {
        cx.at_value(
            &join_key(base, "id"),
            format!("rule id `{id}` must be non-empty and without spaces"),
        );
    }

    let on = compile_on(cx, warnings, base, &raw);
    let on_types = match &on {
        Some(On::Types(t)) => Some(t.as_slice()),
        _ => None,
    };

    let mut absent_in_when = None;
    let when = match &raw.when {
        Some(map) => Cond::All(compile_when(
            cx,
            &join_key(base, "when"),
            &map.0,
            Some(&mut absent_in_when),
        )),
        None => Cond::All(Vec::new()),
    };
    let absent = match (&raw.absent, absent_in_when) {
        (Some(_), Some((path, _))) => {
            cx.at_key(&path, "`absent` is given twice (here and at the top of the rule)");
            None
        }
        (Some(a), None) => Correlation::compile(cx, &join_key(base, "absent"), a),
        (None, Some((path, a))) => Correlation::compile(cx, &path, &a),
        (None, None) => None,
    };
    let threshold = raw
        .threshold
        .as_ref()
        .and_then(|th| Threshold::compile(cx, t, &join_key(base, "threshold"), th, on_types));
    if absent.is_some() && threshold.is_some() {
        cx.at_key(
            &join_key(base, "threshold"),
            "a rule cannot combine `absent` and `threshold`; split it into two rules",
        );
    }
    let once = raw
        .once
        .as_ref()
        .and_then(|o| Once::compile(cx, t, &join_key(base, "once"), o));

    let exit_on = compile_exit_on(cx, base, &raw);
    if raw.actions.is_empty() {
        cx.at_value(&join_key(base, "actions"), "a rule needs at least one action");
    }
    let mut specs = Vec::with_capacity(raw.actions.len());
    for (i, action) in raw.actions.into_iter().enumerate() {
        if let Some(spec) = actions::compile(cx, t, &join_index(&join_key(base, "actions"), i), action) {
            specs.push(spec);
        }
    }

    let tests = compile_tests(cx, base, raw.tests);
    let line = cx.positions.nearest(base).line;
    if cx.errors.len() > errors_before {
        return None;
    }
    let reads_contact = cx.reads_contact || when.reads_contact();
    Some(Rule {
        reads_contact,
        id,
        file: cx.file.to_owned(),
        line,
        description: raw.description,
        on: on?,
        source: raw.source,
        when,
        absent,
        threshold,
        once,
        actions: specs,
        exit_on,
        tests,
        enabled: raw.enabled,
    })
}

fn compile_on(cx: &mut Cx, warnings: &mut Vec<super::Diagnostic>, base: &str, raw: &RawRule) -> Option<On> {
    let path = join_key(base, "on");
    let items = &raw.on.items;
    if items.is_empty() {
        cx.at_value(&path, "`on` needs at least one event type, or \"*\" for all");
        return None;
    }
    if items.iter().any(|t| t == "*") {
        if items.len() > 1 {
            cx.at_value(
                &path,
                "\"*\" already means every type; list types or use \"*\" alone",
            );
            return None;
        }
        return Some(On::Any);
    }
    let known = known_types(cx, raw.source.as_deref());
    if let Some(source) = raw.source.as_deref()
        && !cx.context.event_types.is_empty()
        && !cx.context.event_types.contains_key(source)
    {
        let names: Vec<&str> = cx.context.event_types.keys().map(String::as_str).collect();
        let pos = cx.positions.value(&join_key(base, "source")).unwrap_or_default();
        warnings.push(super::Diagnostic {
            file: cx.file.to_owned(),
            line: pos.line,
            column: pos.column,
            rule: cx.rule.clone(),
            message: format!(
                "no source `{source}` in the configuration (it has: {}); this rule sees no events",
                names.join(", ")
            ),
        });
    }
    let types = typed_list(cx, &path, &raw.on, known.as_ref(), raw.source.is_none());
    Some(On::Types(types))
}

/// The event types of a list (`on:`, `exit_on:`) at `path`, each checked against the
/// types its provider sends (an unknown one is an error with a did-you-mean: the rule
/// would load and never see it).
fn typed_list(
    cx: &mut Cx,
    path: &str,
    list: &super::file::StringList,
    known: Option<&(String, Vec<String>)>,
    no_source: bool,
) -> Vec<String> {
    let mut types = Vec::with_capacity(list.items.len());
    for (i, kind) in list.items.iter().enumerate() {
        let here = if list.was_list {
            join_index(path, i)
        } else {
            path.to_owned()
        };
        if kind.trim().is_empty() {
            cx.at_value(&here, "empty event type");
            continue;
        }
        if let Some((provider, sent)) = known.filter(|(_, t)| !t.contains(kind)) {
            let mut msg = format!("`{kind}` is not a {provider} event type");
            if let Some(best) = did_you_mean(kind, sent.iter().map(String::as_str)) {
                let _ = write!(msg, " — did you mean `{best}`?");
            }
            let _ = write!(msg, " ({provider} sends: {})", sent.join(", "));
            if no_source {
                msg.push_str("; set `source:` if this rule is for another provider");
            }
            cx.at_value(&here, msg);
            continue;
        }
        types.push(kind.clone());
    }
    types
}

/// `exit_on:`: event types that cancel, for their contact, this rule's pending jobs and
/// timers.
fn compile_exit_on(cx: &mut Cx, base: &str, raw: &RawRule) -> Vec<String> {
    let Some(list) = &raw.exit_on else {
        return Vec::new();
    };
    let path = join_key(base, "exit_on");
    if list.items.is_empty() || list.items.iter().any(|t| t == "*") {
        cx.at_value(&path, "`exit_on` lists event types, e.g. `[unsub, spam]`");
        return Vec::new();
    }
    let known = known_types(cx, raw.source.as_deref());
    typed_list(cx, &path, list, known.as_ref(), raw.source.is_none())
}

/// The event types a rule can see, when they are known: its source's provider's, or
/// (without `source:`) those of every configured provider, when each has a fixed list.
fn known_types(cx: &Cx, source: Option<&str>) -> Option<(String, Vec<String>)> {
    let types = &cx.context.event_types;
    match source {
        Some(s) => types.get(s).cloned().flatten(),
        None => {
            let lists: Vec<&(String, Vec<String>)> =
                types.values().map(Option::as_ref).collect::<Option<_>>()?;
            let (first, _) = lists.first()?;
            let provider = if lists.iter().all(|(p, _)| p == first) {
                first.clone()
            } else {
                "known".to_owned()
            };
            // Each type once, in the order the providers list them.
            let mut all: Vec<String> = Vec::new();
            for t in lists.iter().flat_map(|(_, t)| t) {
                if !all.contains(t) {
                    all.push(t.clone());
                }
            }
            Some((provider, all))
        }
    }
}

fn compile_tests(cx: &mut Cx, base: &str, raw: Vec<super::file::RawTestCase>) -> Vec<TestCase> {
    let mut out = Vec::with_capacity(raw.len());
    for (i, case) in raw.into_iter().enumerate() {
        let path = join_index(&join_key(base, "tests"), i);
        match &case.event {
            Value::Object(_) => {}
            _ => {
                cx.at_value(
                    &join_key(&path, "event"),
                    "a test event is a map of fields, e.g. `{ event: open, email: a@b.com }`",
                );
                continue;
            }
        }
        if case.actions.is_some() && case.expect == super::Expect::NoMatch {
            cx.at_key(
                &join_key(&path, "actions"),
                "`actions` can only be checked when the case expects `match`",
            );
            continue;
        }
        out.push(TestCase {
            name: case.name,
            line: cx.positions.nearest(&path).line,
            event: case.event,
            history: case.history,
            contact: case.contact,
            expect: case.expect,
            actions: case.actions,
        });
    }
    out
}
