use crate::util::{hookflow, root};

#[test]
fn schema_file_is_current() {
    let run = hookflow(&["schema"]);
    assert_eq!(run.code, 0);
    let committed = std::fs::read_to_string(root().join("schemas/rule.schema.json")).unwrap();
    assert!(
        run.stdout.trim() == committed.trim(),
        "schemas/rule.schema.json is stale: run `cargo run -- schema > schemas/rule.schema.json`"
    );
}

#[test]
fn shipped_rules_point_editors_at_the_schema() {
    let rules = root().join("rules");
    let mut stack = vec![rules.clone()];
    let mut seen = 0;
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let first = text.lines().next().unwrap_or_default();
            let target = first
                .strip_prefix("# yaml-language-server: $schema=")
                .unwrap_or_else(|| {
                    panic!(
                        "{} must start with the yaml-language-server comment",
                        path.display()
                    )
                });
            let resolved = path.parent().unwrap().join(target);
            assert!(
                resolved
                    .canonicalize()
                    .unwrap()
                    .ends_with("schemas/rule.schema.json"),
                "{}",
                path.display()
            );
            seen += 1;
        }
    }
    assert!(seen >= 7);
}

#[test]
fn schema_describes_rules_and_operators() {
    let schema: serde_json::Value = serde_json::from_str(&hookflow(&["schema"]).stdout).unwrap();
    let rule = &schema["$defs"]["RawRule"];
    assert_eq!(rule["additionalProperties"], false);
    assert_eq!(rule["required"], serde_json::json!(["on", "actions"]));
    let ops = schema["$defs"]["Operators"]["properties"].as_object().unwrap();
    for op in hookflow::rules::condition::OPERATORS {
        assert!(ops.contains_key(*op), "{op}");
    }
}
