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

/// Every `.yaml` below `dir`.
fn yaml_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// check-jsonschema (PyPI) on `files` with the committed schema: (exit code, output).
fn check_jsonschema(files: &[std::path::PathBuf]) -> (i32, String) {
    crate::util::python_module("check_jsonschema", "check-jsonschema");
    let out = std::process::Command::new("python3")
        .args(["-m", "check_jsonschema", "--schemafile"])
        .arg(root().join("schemas/rule.schema.json"))
        .args(files)
        .output()
        .expect("python3 runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// A real validator agrees with `hookflow check`: each file of
/// `tests/fixtures/schema/invalid` is refused by both, and every shipped rule file is
/// accepted by the schema.
#[test]
fn a_real_validator_refuses_what_check_refuses() {
    let invalid = yaml_files(&root().join("tests/fixtures/schema/invalid"));
    assert!(invalid.len() >= 12);
    for file in &invalid {
        let (code, text) = check_jsonschema(std::slice::from_ref(file));
        assert_ne!(code, 0, "the schema accepts {}:\n{text}", file.display());
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("rules")).unwrap();
        std::fs::copy(file, dir.path().join("rules/r.yaml")).unwrap();
        let run = crate::util::hookflow_in(dir.path(), &["check"], &[]);
        assert_eq!(run.code, 1, "check accepts {}:\n{}", file.display(), run.stdout);
    }
    // An unknown operator is named, not reported as "incorrect type".
    let (_, text) = check_jsonschema(&[root().join("tests/fixtures/schema/invalid/unknown-operator.yaml")]);
    assert!(text.contains("start_with"), "{text}");

    let mut valid = yaml_files(&root().join("rules"));
    valid.extend(yaml_files(&root().join("examples/rules")));
    valid.extend(yaml_files(&root().join("tests/fixtures/contract")));
    let (code, text) = check_jsonschema(&valid);
    assert_eq!(code, 0, "{text}");
}
