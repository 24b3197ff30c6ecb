//! Every operator against the payload shapes providers really send.

use chrono::{TimeZone, Utc};
use serde_json::{Value, json};

use super::*;
use crate::base::diag::Cx;
use crate::base::yaml::Positions;
use crate::rules::condition::NoState as NoHistory;
use serde_yaml::Mapping;

/// Compiles `when` (YAML) and returns a closure evaluating it, or the error messages.
fn when(yaml: &str) -> Result<Cond, Vec<String>> {
    let map: Mapping = serde_yaml::from_str(yaml).expect("test YAML parses");
    let positions = Positions::build(yaml);
    let mut cx = Cx::new("t.yaml", &positions);
    let conds = compile_when(&mut cx, "", &map, None);
    if cx.errors.is_empty() {
        Ok(Cond::All(conds))
    } else {
        Err(cx
            .errors
            .into_iter()
            .map(|d| format!("{}:{}: {}", d.line, d.column, d.message))
            .collect())
    }
}

fn event(data: Value) -> Event {
    Event {
        id: "e1".into(),
        source: "mailjet".into(),
        kind: "open".into(),
        time: Utc.timestamp_opt(1_433_103_519, 0).unwrap(),
        data,
    }
}

fn holds(yaml: &str, data: Value) -> bool {
    let cond = when(yaml).unwrap_or_else(|e| panic!("{yaml}: {e:?}"));
    cond.eval(&event(data), &NoHistory) == Truth::True
}

#[test]
fn equality_with_coercion() {
    assert!(holds("mj_campaign_id: 7173", json!({"mj_campaign_id": "7173"})));
    assert!(holds("mj_campaign_id: '7173'", json!({"mj_campaign_id": 7173})));
    assert!(!holds("mj_campaign_id: 7173", json!({"mj_campaign_id": 7174})));
    assert!(!holds("mj_campaign_id: 7173", json!({})));
    assert!(holds("hard_bounce: true", json!({"hard_bounce": true})));
    assert!(holds("hard_bounce: true", json!({"hard_bounce": "true"})));
    assert!(!holds("hard_bounce: true", json!({"hard_bounce": 1})));
    assert!(holds("x: null", json!({"x": null})));
    assert!(!holds("x: null", json!({})));
    assert!(holds("geo: { eq: US }", json!({"geo": "US"})));
    assert!(holds("meta: { eq: { a: 1 } }", json!({"meta": {"a": 1}})));
}

#[test]
fn huge_message_ids_compare_exactly() {
    let data: Value = serde_json::from_str(r#"{"MessageID": 19421777396190490}"#).unwrap();
    assert!(holds("MessageID: 19421777396190490", data.clone()));
    assert!(holds("MessageID: '19421777396190490'", data.clone()));
    assert!(!holds("MessageID: 19421777396190491", data.clone()));
    assert!(holds("MessageID: { gt: 19421777396190489 }", data.clone()));
    assert!(!holds("MessageID: { gt: 19421777396190490 }", data.clone()));
    assert!(holds("MessageID: { starts_with: '1942177739619049' }", data));
}

#[test]
fn negative_operators_hold_on_missing_fields() {
    assert!(holds("geo: { ne: US }", json!({})));
    assert!(holds("geo: { ne: US }", json!({"geo": "FR"})));
    assert!(!holds("geo: { ne: US }", json!({"geo": "US"})));
    assert!(holds("geo: { not_in: [US, CA] }", json!({})));
    assert!(!holds("geo: { not_in: [US, CA] }", json!({"geo": "CA"})));
    assert!(holds("geo: { exists: false }", json!({})));
    assert!(!holds("geo: { exists: false }", json!({"geo": null})));
    assert!(holds("geo: { exists: true }", json!({"geo": null})));
    // Every positive operator fails on a missing field.
    for op in [
        "eq: 1",
        "in: [1]",
        "gt: 0",
        "gte: 0",
        "lt: 9",
        "lte: 9",
        "contains: a",
        "starts_with: a",
        "ends_with: a",
        "matches: a",
        "empty: true",
        "empty: false",
        "within: 1h",
    ] {
        assert!(
            !holds(&format!("f: {{ {op} }}"), json!({})),
            "{op} on a missing field"
        );
    }
}

#[test]
fn in_and_list_shorthand() {
    assert!(holds("geo: { in: [US, CA] }", json!({"geo": "CA"})));
    assert!(holds("geo: [US, CA]", json!({"geo": "US"})));
    assert!(!holds("geo: [US, CA]", json!({"geo": "FR"})));
    assert!(holds("code: { in: [1, 2] }", json!({"code": "2"})));
    assert!(holds("geo: { in: US }", json!({"geo": "US"})));
}

#[test]
fn ordering_on_numbers_strings_and_times() {
    assert!(holds("n: { gt: 5 }", json!({"n": 6})));
    assert!(holds("n: { gt: 5 }", json!({"n": "6"})));
    assert!(!holds("n: { gt: 5 }", json!({"n": "six"})));
    assert!(!holds("n: { gt: 5 }", json!({"n": true})));
    assert!(holds("n: { gte: 5, lt: 10 }", json!({"n": 5})));
    assert!(!holds("n: { gte: 5, lt: 10 }", json!({"n": 10})));
    assert!(holds("n: { lte: -1.5 }", json!({"n": -2})));
    assert!(holds(
        "time: { gt: '2015-05-31T00:00:00Z' }",
        json!({"time": 1433103519})
    ));
    assert!(holds(
        "at: { lt: '2015-06-01T00:00:00+02:00' }",
        json!({"at": "2015-05-31T20:00:00Z"})
    ));
    assert!(!holds(
        "at: { lt: '2015-06-01T00:00:00Z' }",
        json!({"at": "not a time"})
    ));
}

#[test]
fn text_operators() {
    let data = json!({"email": "a@gmail.com", "agent": "Mozilla/5.0 Firefox/11.0", "n": 7173});
    assert!(holds("email: { ends_with: '@gmail.com' }", data.clone()));
    assert!(!holds("email: { ends_with: '@GMAIL.com' }", data.clone()));
    assert!(holds("email: { starts_with: 'a@' }", data.clone()));
    assert!(holds("agent: { contains: Firefox }", data.clone()));
    assert!(holds("agent: { matches: 'Firefox/\\d+' }", data.clone()));
    assert!(holds("email: { matches: '(?i)@GMAIL\\.COM$' }", data.clone()));
    assert!(holds("n: { contains: 17 }", data.clone()));
    assert!(holds("n: { ends_with: '73' }", data.clone()));
    assert!(!holds("email: { contains: x }", json!({"email": {"a": 1}})));
}

#[test]
fn contains_on_lists_and_empty() {
    assert!(holds("tags: { contains: vip }", json!({"tags": ["a", "vip"]})));
    assert!(!holds("tags: { contains: vi }", json!({"tags": ["a", "vip"]})));
    assert!(holds("tags: { contains: 2 }", json!({"tags": [1, "2"]})));
    for empty in [json!(""), json!(null), json!([]), json!({})] {
        assert!(holds("p: { empty: true }", json!({ "p": empty })));
    }
    assert!(holds("p: { empty: false }", json!({"p": "x"})));
    assert!(holds("p: { empty: false }", json!({"p": 0})));
}

#[test]
fn within_is_relative_to_the_event_time() {
    // The event happened at 1433103519.
    assert!(holds(
        "sent_at: { within: 24h }",
        json!({"sent_at": 1433103519 - 3600})
    ));
    assert!(!holds(
        "sent_at: { within: 24h }",
        json!({"sent_at": 1433103519 - 90000})
    ));
    assert!(holds(
        "sent_at: { within: 24h }",
        json!({"sent_at": "2015-05-31T10:00:00Z"})
    ));
    assert!(!holds("sent_at: { within: 24h }", json!({"sent_at": "soon"})));
}

#[test]
fn paths_dots_and_jsonpath_any_value() {
    let data = json!({"geo": {"country": "US"}, "items": [{"sku": "A"}, {"sku": "B", "qty": 3}]});
    assert!(holds("geo.country: US", data.clone()));
    assert!(holds("items.sku: B", data.clone()));
    assert!(holds("items.0.sku: A", data.clone()));
    assert!(!holds("items.0.sku: B", data.clone()));
    assert!(holds("$.items[*].sku: { in: [B] }", data.clone()));
    assert!(holds("$.items[?@.qty > 2].sku: B", data.clone()));
    assert!(!holds("$.items[*].sku: C", data.clone()));
    // ne over several values: none may equal.
    assert!(!holds("$.items[*].sku: { ne: A }", data.clone()));
    assert!(holds("$.items[*].sku: { ne: C }", data.clone()));
    // Reserved words as payload fields.
    assert!(holds("$.any: 1", json!({"any": 1})));
}

#[test]
fn combinators_at_any_depth() {
    let data = json!({"geo": "US", "email": "a@gmail.com", "n": 3});
    assert!(holds("any: [ { geo: FR }, { geo: US } ]", data.clone()));
    assert!(!holds("any: [ { geo: FR }, { geo: DE } ]", data.clone()));
    assert!(holds("not: { geo: FR }", data.clone()));
    assert!(!holds("not: { geo: US }", data.clone()));
    assert!(holds(
        "all: [ { any: [ { geo: FR }, { not: { n: { lt: 2 } } } ] }, { email: { ends_with: gmail.com } } ]",
        data.clone()
    ));
    assert!(!holds("any: []", data.clone()));
    assert!(holds("all: []", data));
}

#[test]
fn after_without_history_is_unknown_and_kleene_logic() {
    let ev = event(json!({"MessageID": 1, "geo": "US"}));
    let eval = |yaml: &str| when(yaml).unwrap().eval(&ev, &NoHistory);
    assert_eq!(
        eval("after: { event: sent, same: MessageID, within: 24h }"),
        Truth::Unknown
    );
    assert_eq!(
        eval("{ geo: FR, after: { event: sent, same: MessageID, within: 24h } }"),
        Truth::False
    );
    assert_eq!(
        eval("any: [ { geo: US }, { after: { event: sent, same: MessageID, within: 1h } } ]"),
        Truth::True
    );
    assert_eq!(
        eval("not: { after: { event: sent, same: MessageID, within: 1h } }"),
        Truth::Unknown
    );
}

#[test]
fn errors_are_located_with_did_you_mean() {
    let errs = when("email:\n  start_with: x\n").unwrap_err();
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].starts_with("2:3: unknown operator `start_with` — did you mean `starts_with`?"),
        "{errs:?}"
    );

    let errs =
        when("a: { matches: '(' }\nb: { gt: soon }\nc: { exists: maybe }\nd: { within: 3y }\n").unwrap_err();
    assert_eq!(errs.len(), 4, "{errs:?}");
    assert!(
        errs[0].starts_with("1:15: invalid regular expression"),
        "{errs:?}"
    );
    assert!(
        errs[1].contains("`gt` needs a number or an RFC 3339 time"),
        "{errs:?}"
    );
    assert!(errs[2].contains("`exists` takes `true` or `false`"), "{errs:?}");
    assert!(errs[3].contains("unknown unit `y`"), "{errs:?}");

    let errs = when("$.items[: 1\n").unwrap_err();
    assert!(errs[0].starts_with("1:1: invalid JSONPath"), "{errs:?}");
    let errs = when("any: { geo: US }\n").unwrap_err();
    assert!(errs[0].contains("`any` takes a list"), "{errs:?}");
    let errs = when("geo: {}\n").unwrap_err();
    assert!(errs[0].contains("no operator given"), "{errs:?}");
    let errs = when("after: { event: sent, same: MessageID, withn: 24h }\n").unwrap_err();
    assert!(errs[0].contains("did you mean `within`"), "{errs:?}");
}

/// An event at `at` (RFC 3339) with `data`.
fn event_at(at: &str, data: Value) -> Event {
    Event {
        time: chrono::DateTime::parse_from_rfc3339(at)
            .unwrap()
            .with_timezone(&Utc),
        ..event(data)
    }
}

fn local(yaml: &str, at: &str, data: Value) -> (bool, String) {
    let cond = when(yaml).unwrap_or_else(|e| panic!("{yaml}: {e:?}"));
    let ev = event_at(at, data);
    let explain = cond.explain(&ev, &NoHistory);
    let saw = serde_json::to_value(&explain.children[0].saw).unwrap();
    (
        cond.eval(&ev, &NoHistory) == Truth::True,
        saw.as_str().unwrap_or_default().to_owned(),
    )
}

#[test]
fn local_time_in_the_contacts_zone() {
    let office = r#"local_time: { tz: "{{Payload.tz}}", fallback: Europe/Paris, between: ["08:00", "21:00"], days: [mon, tue, wed, thu, fri] }"#;
    let tokyo = json!({"Payload": "{\"tz\":\"Asia/Tokyo\"}"});
    // Friday 2027-01-15 00:30 UTC is 09:30 in Tokyo (in), 01:30 in Paris (out).
    assert_eq!(
        local(office, "2027-01-15T00:30:00Z", tokyo.clone()),
        (true, "Fri 09:30 Asia/Tokyo".into())
    );
    assert!(!local(office, "2027-01-15T00:30:00Z", json!({})).0);
    // 12:00 UTC is 21:00 in Tokyo: the end is excluded; 11:59 is in.
    assert!(!local(office, "2027-01-15T12:00:00Z", tokyo.clone()).0);
    assert!(local(office, "2027-01-15T11:59:00Z", tokyo.clone()).0);
    // Saturday in Tokyo.
    assert!(!local(office, "2027-01-16T01:00:00Z", tokyo).0);
    // An unknown or missing zone: the fallback, and it says so.
    let (ok, saw) = local(
        office,
        "2027-01-15T12:30:00Z",
        json!({"Payload": "{\"tz\":\"Mars/Olympus\"}"}),
    );
    assert!(ok);
    assert_eq!(
        saw,
        "Fri 13:30 Europe/Paris (the fallback: zone `Mars/Olympus` unknown)"
    );
    let (_, saw) = local(office, "2027-01-15T12:30:00Z", json!({"email": "a@b.co"}));
    assert!(saw.ends_with("(the fallback: no Payload.tz)"), "{saw}");
    // Summer time: 07:30 UTC is 09:30 in Paris in July (CEST), 08:30 in January (CET).
    let paris = r#"local_time: { tz: Europe/Paris, between: ["09:00", "20:00"] }"#;
    assert!(local(paris, "2027-07-15T07:30:00Z", json!({})).0);
    assert!(!local(paris, "2027-01-15T07:30:00Z", json!({})).0);
    // Quiet hours across midnight.
    let night = r#"local_time: { tz: UTC, between: ["21:00", "08:00"] }"#;
    assert!(local(night, "2027-01-15T23:00:00Z", json!({})).0);
    assert!(local(night, "2027-01-15T07:59:00Z", json!({})).0);
    assert!(!local(night, "2027-01-15T08:00:00Z", json!({})).0);
}

#[test]
fn local_time_mistakes_are_load_errors_with_their_fix() {
    let err = |yaml: &str| when(yaml).unwrap_err().join("\n");
    assert!(
        err(r#"local_time: { tz: Europe/Pari, between: ["08:00", "21:00"] }"#)
            .contains("did you mean `Europe/Paris`")
    );
    assert!(
        err(r#"local_time: { tz: "{{Payload.tz}}", between: ["08:00", "21:00"] }"#)
            .contains("give a `fallback:` zone")
    );
    assert!(
        err(r#"local_time: { tz: UTC, between: ["8am", "21:00"] }"#).contains("`8am` is not a time of day")
    );
    assert!(err(r#"local_time: { tz: UTC, days: [mon, fir] }"#).contains("did you mean `fri`"));
    assert!(err(r#"local_time: { tz: UTC }"#).contains("needs `between"));
    assert!(err(r#"local_time: { tz: "x {{Payload.tz}}", days: [mon] }"#).contains("one field"));
}
