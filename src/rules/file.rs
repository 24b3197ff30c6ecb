//! Stage one of loading: the rule file exactly as written. serde with
//! `deny_unknown_fields` rejects typos with a located error; `schemars` derives the
//! published JSON Schema (`schemas/rule.schema.json`) from these same types, so the schema
//! and the loader cannot disagree. Nothing here is interpreted yet: see `compile.rs`.

pub use crate::base::yaml::StringList;
use schemars::JsonSchema;
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::base::duration::Duration;

/// A rule file holding several rules.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawMany {
    /// The rules of this file; each needs an `id` or gets `path#index`.
    pub rules: Vec<RawRule>,
}

/// One rule: when events of a type arrive and the conditions hold, run the actions.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    /// Unique id; defaults to the file's path under the rules folder, without extension.
    pub id: Option<String>,
    /// What this rule is for, in words a colleague understands.
    pub description: Option<String>,
    /// Event type(s) this rule listens to: `open`, a list `[sent, blocked]`, or `"*"` for all.
    pub on: StringList,
    /// Only events from this source (as named in the server config), e.g. `mailjet`.
    pub source: Option<String>,
    /// Conditions that must all hold: `field: value` (equality), `field: { operator: value }`,
    /// `all`/`any`/`not` combinators and `after` correlations.
    pub when: Option<When>,
    /// Fire later, only if no matching event arrives meanwhile ("not opened within 48h").
    pub absent: Option<RawCorrelation>,
    /// Count events in a sliding window per group and fire when a limit is crossed.
    pub threshold: Option<RawThreshold>,
    /// Fire at most once per rendered key per period.
    pub once: Option<RawOnce>,
    /// What to do, in order. Each entry has exactly one kind (`email`, `http`, `contacts`,
    /// `suppress`, `unsuppress`, `log`, `cancel`) and may carry a `delay`.
    pub actions: Vec<crate::actions::RawAction>,
    /// Event types that end this rule for their contact (`[unsub, spam]`): its jobs not
    /// yet attempted are cancelled, and its pending `absent` timers.
    pub exit_on: Option<StringList>,
    /// Example events checked by `hookflow check`.
    #[serde(default)]
    pub tests: Vec<RawTestCase>,
    /// `false` keeps the rule loaded and checked but it never fires.
    #[serde(default = "enabled_default")]
    pub enabled: bool,
}

fn enabled_default() -> bool {
    true
}

/// The `when:` map, kept as written (in order) and interpreted by the compiler, because a
/// value is either a literal or an operator map and serde cannot give a good error for that.
#[derive(Debug)]
pub struct When(pub serde_yaml::Mapping);

impl<'de> Deserialize<'de> for When {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match crate::base::yaml::ExactValue::deserialize(d)?.0 {
            serde_yaml::Value::Mapping(m) => Ok(When(m)),
            serde_yaml::Value::Null => Ok(When(serde_yaml::Mapping::new())),
            _ => Err(de::Error::custom(
                "`when` is a map of conditions, e.g. `when: { geo: US }`",
            )),
        }
    }
}

impl JsonSchema for When {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Conditions".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        condition_schema()
    }
}

/// The schema of a condition map, written by hand: field names are free, so only the
/// operator maps and combinators can be described.
fn condition_schema() -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "description": "Every entry must hold. A key is a field name, a dotted path (`geo.country`) or JSONPath (`$.items[*].sku`); a value is a literal (equality), a list (one of), or a map of operators.",
        "properties": {
            "all": { "type": "array", "items": { "$ref": "#/$defs/Conditions" }, "description": "Every entry holds." },
            "any": { "type": "array", "items": { "$ref": "#/$defs/Conditions" }, "description": "At least one entry holds." },
            "not": { "$ref": "#/$defs/Conditions", "description": "The entry does not hold." },
            "after": { "$ref": "#/$defs/RawCorrelation", "description": "An earlier event of that type with the same field value was seen within the period." },
            "absent": { "$ref": "#/$defs/RawCorrelation", "description": "Fire after the period, only if no matching event arrived." },
            "local_time": {
                "type": "object",
                "description": "The event's time, in a zone (the contact's), is within `between` and on `days`.",
                "properties": {
                    "tz": { "type": "string", "description": "An IANA zone (`Europe/Paris`), or one field holding one: `\"{{Payload.tz}}\"`." },
                    "fallback": { "type": "string", "description": "The zone when the event's is missing or unknown (required with a field `tz`)." },
                    "between": { "type": "array", "items": { "type": "string", "pattern": "^[0-2][0-9]:[0-5][0-9]$" }, "minItems": 2, "maxItems": 2, "description": "From (included) to (excluded), HH:MM; a start after the end spans midnight." },
                    "days": { "type": "array", "items": { "type": "string", "enum": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"] }, "description": "Days of the week, in the zone." }
                },
                "required": ["tz"],
                "additionalProperties": false
            }
        },
        "additionalProperties": {
            "description": "A literal (equality), a list (one of), or a map of operators.",
            "if": { "type": "object" },
            "then": { "$ref": "#/$defs/Operators" },
            "else": { "type": ["string", "number", "boolean", "null", "array"] }
        }
    })
}

// Only for the schema: the operator map of one field.
/// Operators comparing one field; several in one map must all hold.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct Operators {
    /// Equal (numbers and numeric strings compare as numbers: `"7173"` equals `7173`).
    eq: Option<Value>,
    /// Not equal; also holds when the field is missing.
    ne: Option<Value>,
    /// Equal to one of the values.
    #[serde(rename = "in")]
    in_: Option<Vec<Value>>,
    /// Equal to none of the values; also holds when the field is missing.
    not_in: Option<Vec<Value>>,
    /// Greater than a number or an RFC 3339 time.
    gt: Option<Value>,
    /// Greater than or equal.
    gte: Option<Value>,
    /// Less than a number or an RFC 3339 time.
    lt: Option<Value>,
    /// Less than or equal.
    lte: Option<Value>,
    /// Text contains the value, or a list contains an equal element.
    contains: Option<Value>,
    /// Text starts with the value (case-sensitive).
    starts_with: Option<String>,
    /// Text ends with the value (case-sensitive).
    ends_with: Option<String>,
    /// Text matches the regular expression (Rust `regex` syntax; `(?i)` ignores case).
    matches: Option<String>,
    /// `true`: the field is present (even if null); `false`: it is missing.
    exists: Option<bool>,
    /// `true`: the field is null, `""`, `[]` or `{}`.
    empty: Option<bool>,
    /// The field is a time no older than this before the event's time.
    within: Option<Duration>,
}

/// A correlation with another event type: `{ event: sent, same: MessageID, within: 24h }`.
#[derive(Debug, Deserialize, JsonSchema, Clone)]
#[serde(deny_unknown_fields)]
pub struct RawCorrelation {
    /// The other event's type.
    pub event: String,
    /// The field whose value both events share (e.g. `MessageID`).
    pub same: String,
    /// How far apart the two events may be.
    pub within: Duration,
}

/// Sliding-window counting: `{ window: 15m, group_by: "{{domain email}}", ratio: {...}, above: 0.6 }`.
#[derive(Debug, Deserialize, JsonSchema, Clone)]
#[serde(deny_unknown_fields)]
pub struct RawThreshold {
    /// The window's length.
    pub window: Duration,
    /// A template giving the group each event counts in (one window per group).
    pub group_by: Option<String>,
    /// Count only these event types (default: every type in `on`).
    pub count: Option<StringList>,
    /// Compare `count` events to `of` events: ratio = count / of.
    pub ratio: Option<RawRatio>,
    /// Fire when the count (or ratio) is above this.
    pub above: Option<f64>,
    /// Fire when the count (or ratio) is below this.
    pub below: Option<f64>,
    /// Do not fire before the window holds this many events (of the `of` types for a ratio).
    pub min_events: Option<u64>,
    /// After firing for a group, stay quiet for this long.
    pub cooldown: Option<Duration>,
}

/// `{ count: blocked, of: [sent, blocked] }`.
#[derive(Debug, Deserialize, JsonSchema, Clone)]
#[serde(deny_unknown_fields)]
pub struct RawRatio {
    /// Event types counted in the numerator.
    pub count: StringList,
    /// Event types counted in the denominator; omit for a plain count.
    pub of: Option<StringList>,
}

/// `{ per: "{{email}}", for: 30d }`.
#[derive(Debug, Deserialize, JsonSchema, Clone)]
#[serde(deny_unknown_fields)]
pub struct RawOnce {
    /// A template; the rule fires at most once per rendered value.
    pub per: String,
    /// For how long a key blocks further firings.
    #[serde(rename = "for")]
    pub period: Duration,
}

/// An inline test case, run by `hookflow check`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTestCase {
    /// A short name shown when the case fails.
    pub name: Option<String>,
    /// The event, as the provider sends it.
    pub event: Value,
    /// Events seen before (`ago: 2h`) or after (`later: 3h`) this one.
    pub history: Option<Vec<Value>>,
    /// What hookflow knows of the event's contact, for `contact.*`: `{ lists: [vip],
    /// props: { plan: pro }, suppressed: false }`.
    pub contact: Option<Value>,
    /// Whether the rule must fire.
    pub expect: Expect,
    /// For `match`: fields each rendered action must have, in order (a subset is enough).
    pub actions: Option<Vec<Value>>,
}

#[derive(Debug, Deserialize, JsonSchema, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Expect {
    Match,
    NoMatch,
}

// Only for the schema: a file holds one rule or `rules: [...]`.
/// A hookflow rule file: one rule, or several under `rules:`.
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
#[schemars(title = "hookflow rule file")]
enum RuleFile {
    One(Box<RawRule>),
    Many(RawMany),
}

/// The JSON Schema of a rule file, as `hookflow schema` prints it.
pub fn schema() -> Value {
    let mut generator = schemars::SchemaGenerator::default();
    generator.subschema_for::<Operators>();
    let schema = generator.into_root_schema_for::<RuleFile>();
    let mut schema = serde_json::to_value(schema).unwrap_or(Value::Null);
    tighten(&mut schema["$defs"]);
    schema
}

/// What the derived schema cannot say by itself, so that an editor refuses what `check`
/// refuses: at least one action, exactly one kind per action (`delay` alone is none),
/// no `null` kind or operator, the methods there are, one body per email and request,
/// one change per contacts action, one limit per threshold.
fn tighten(defs: &mut Value) {
    let one_of = |keys: &[&str]| {
        Value::Array(
            keys.iter()
                .map(|k| serde_json::json!({ "required": [k] }))
                .collect(),
        )
    };
    defs["RawRule"]["properties"]["actions"]["minItems"] = 1.into();
    defs["RawMany"]["properties"]["rules"]["minItems"] = 1.into();
    let action = &mut defs["RawAction"];
    for kind in crate::actions::KINDS {
        not_null(&mut action["properties"][kind]);
    }
    action["oneOf"] = one_of(crate::actions::KINDS);
    if let Some(ops) = defs["Operators"]["properties"].as_object_mut() {
        ops.values_mut().for_each(not_null);
        // `in: US` is `in: [US]`.
        for list in ["in", "not_in"] {
            if let Some(op) = ops.get_mut(list).and_then(Value::as_object_mut) {
                op.remove("items");
                op.insert(
                    "type".into(),
                    serde_json::json!(["array", "string", "number", "boolean"]),
                );
            }
        }
    }
    let methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
        .iter()
        .map(|m| {
            m.chars()
                .map(|c| format!("[{}{}]", c, c.to_ascii_lowercase()))
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("|");
    defs["RawHttp"]["properties"]["method"]["pattern"] = format!("^({methods})$").into();
    defs["RawHttp"]["not"] = serde_json::json!({ "required": ["json", "body"] });
    defs["RawEmail"]["oneOf"] = serde_json::json!([
        { "required": ["template"] },
        { "anyOf": [{ "required": ["text"] }, { "required": ["html"] }] }
    ]);
    defs["RawContacts"]["oneOf"] = one_of(&["add", "remove", "update"]);
    defs["RawThreshold"]["oneOf"] = one_of(&["above", "below"]);
    defs["RawThreshold"]["not"] = serde_json::json!({ "required": ["count", "ratio"] });
}

/// An optional property's schema without its `null` alternative.
fn not_null(property: &mut Value) {
    if let Some(alts) = property.get_mut("anyOf").and_then(Value::as_array_mut) {
        alts.retain(|a| a.get("type") != Some(&Value::from("null")));
        if alts.len() == 1 {
            let only = alts.remove(0);
            if let (Some(p), Value::Object(o)) = (property.as_object_mut(), only) {
                p.remove("anyOf");
                p.extend(o);
            }
        }
    } else if let Some(types) = property.get_mut("type").and_then(Value::as_array_mut) {
        types.retain(|t| t != "null");
        if types.len() == 1 {
            property["type"] = types[0].clone();
        }
    }
}
