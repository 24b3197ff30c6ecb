//! Every example query of RFC 9535 (JSONPath), on the RFC's own documents, with the
//! RFC's results; and the typing rules of its section 2.4 (function extensions).
//! Where the RFC leaves the order of results open (descendant segments), results
//! compare as multisets: conditions ask whether any value holds, so order never matters.

use serde_json::{Value, json};

use super::FieldPath;

fn query(path: &str, doc: &Value) -> Vec<Value> {
    FieldPath::parse(path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .all(doc)
}

fn check(doc: &Value, cases: &[(&str, Value)]) {
    for (path, expected) in cases {
        let got = query(path, doc);
        assert_eq!(Value::Array(got), *expected, "{path}");
    }
}

fn check_unordered(doc: &Value, cases: &[(&str, Value)]) {
    let sorted = |v: Vec<Value>| {
        let mut s: Vec<String> = v.iter().map(Value::to_string).collect();
        s.sort();
        s
    };
    for (path, expected) in cases {
        let expected = expected.as_array().unwrap().clone();
        assert_eq!(sorted(query(path, doc)), sorted(expected), "{path}");
    }
}

/// Section 1.5, figure 1 and table 2.
#[test]
fn overview_bookstore() {
    let doc = json!({ "store": {
        "book": [
          { "category": "reference", "author": "Nigel Rees", "title": "Sayings of the Century", "price": 8.95 },
          { "category": "fiction", "author": "Evelyn Waugh", "title": "Sword of Honour", "price": 12.99 },
          { "category": "fiction", "author": "Herman Melville", "title": "Moby Dick", "isbn": "0-553-21311-3", "price": 8.99 },
          { "category": "fiction", "author": "J. R. R. Tolkien", "title": "The Lord of the Rings", "isbn": "0-395-19395-8", "price": 22.99 }
        ],
        "bicycle": { "color": "red", "price": 399 }
    }});
    let books = doc["store"]["book"].clone();
    let authors = json!([
        "Nigel Rees",
        "Evelyn Waugh",
        "Herman Melville",
        "J. R. R. Tolkien"
    ]);
    check(
        &doc,
        &[
            ("$.store.book[*].author", authors.clone()),
            ("$..book[2]", json!([books[2]])),
            ("$..book[2].author", json!(["Herman Melville"])),
            ("$..book[2].publisher", json!([])),
            ("$..book[-1]", json!([books[3]])),
            ("$..book[0,1]", json!([books[0], books[1]])),
            ("$..book[:2]", json!([books[0], books[1]])),
            ("$..book[?@.isbn]", json!([books[2], books[3]])),
            ("$..book[?@.price<10]", json!([books[0], books[2]])),
        ],
    );
    check_unordered(
        &doc,
        &[
            ("$..author", authors),
            ("$.store.*", json!([books, doc["store"]["bicycle"]])),
            ("$.store..price", json!([8.95, 12.99, 8.99, 22.99, 399])),
        ],
    );
    // `$..*`: every member value and array element.
    assert_eq!(query("$..*", &doc).len(), 27);
}

/// Section 2.2.3: the root identifier.
#[test]
fn root() {
    let doc = json!({"k": "v"});
    check(&doc, &[("$", json!([doc]))]);
}

/// Section 2.3.1.3: name selectors, quoted, with dots, spaces and quotes in names.
#[test]
fn name_selector() {
    let doc = json!({"o": {"j j": {"k.k": 3}}, "'": {"@": 2}});
    check(
        &doc,
        &[
            ("$.o['j j']", json!([{"k.k": 3}])),
            ("$.o['j j']['k.k']", json!([3])),
            ("$.o[\"j j\"][\"k.k\"]", json!([3])),
            ("$[\"'\"][\"@\"]", json!([2])),
        ],
    );
}

/// Section 2.3.2.3: wildcard selectors.
#[test]
fn wildcard_selector() {
    let doc = json!({"o": {"j": 1, "k": 2}, "a": [5, 3]});
    check(
        &doc,
        &[
            ("$[*]", json!([{"j": 1, "k": 2}, [5, 3]])),
            ("$.o[*]", json!([1, 2])),
            ("$.o[*, *]", json!([1, 2, 1, 2])),
            ("$.a[*]", json!([5, 3])),
        ],
    );
}

/// Section 2.3.3.3: index selectors.
#[test]
fn index_selector() {
    let doc = json!(["a", "b"]);
    check(&doc, &[("$[1]", json!(["b"])), ("$[-2]", json!(["a"]))]);
}

/// Section 2.3.4.3: array slices.
#[test]
fn slice_selector() {
    let doc = json!(["a", "b", "c", "d", "e", "f", "g"]);
    check(
        &doc,
        &[
            ("$[1:3]", json!(["b", "c"])),
            ("$[5:]", json!(["f", "g"])),
            ("$[1:5:2]", json!(["b", "d"])),
            ("$[5:1:-2]", json!(["f", "d"])),
            ("$[::-1]", json!(["g", "f", "e", "d", "c", "b", "a"])),
        ],
    );
}

/// Section 2.3.5.3: filter selectors, comparisons, logical operators, functions.
#[test]
fn filter_selector() {
    let doc = json!({
        "a": [3, 5, 1, 2, 4, 6, {"b": "j"}, {"b": "k"}, {"b": {}}, {"b": "kilo"}],
        "o": {"p": 1, "q": 2, "r": 3, "s": 5, "t": {"u": 6}},
        "e": "f"
    });
    let a = doc["a"].clone();
    check(
        &doc,
        &[
            ("$.a[?@.b == 'kilo']", json!([{"b": "kilo"}])),
            ("$.a[?(@.b == 'kilo')]", json!([{"b": "kilo"}])),
            ("$.a[?@>3.5]", json!([5, 4, 6])),
            (
                "$.a[?@.b]",
                json!([{"b": "j"}, {"b": "k"}, {"b": {}}, {"b": "kilo"}]),
            ),
            ("$.a[?@<2 || @.b == \"k\"]", json!([1, {"b": "k"}])),
            ("$.a[?match(@.b, \"[jk]\")]", json!([{"b": "j"}, {"b": "k"}])),
            (
                "$.a[?search(@.b, \"[jk]\")]",
                json!([{"b": "j"}, {"b": "k"}, {"b": "kilo"}]),
            ),
            ("$.a[?@.b == $.x]", json!([3, 5, 1, 2, 4, 6])),
            ("$.a[?@ == @]", a.clone()),
        ],
    );
    check_unordered(
        &doc,
        &[
            ("$[?@.*]", json!([a, doc["o"]])),
            ("$.o[?@<3, ?@<3]", json!([1, 2, 1, 2])),
            ("$.o[?@>1 && @<4]", json!([2, 3])),
            ("$.o[?@.u || @.x]", json!([{"u": 6}])),
        ],
    );
}

/// Section 2.4: well-typed function expressions load, the others are refused.
#[test]
fn function_typing() {
    for valid in [
        "$[?length(@) < 3]",
        "$[?count(@.*) == 1]",
        "$[?match(@.timezone, 'Europe/.*')]",
        "$[?value(@..color) == \"red\"]",
        "$[?length(@.authors) >= 5]",
        "$[?count(@.*.author) >= 5]",
        "$[?match(@.date, \"1974-05-..\")]",
        "$[?search(@.author, \"[BR]ob\")]",
        "$[?value(@..color) == \"red\"]",
    ] {
        assert!(
            FieldPath::parse(valid).is_ok(),
            "{valid}: {:?}",
            FieldPath::parse(valid).err()
        );
    }
    for (invalid, why) in [
        ("$[?length(@.*) < 3]", "one value"),
        ("$[?count(1) == 1]", ""),
        ("$[?count(foo(@.*)) == 1]", ""),
        ("$[?match(@.timezone, 'Europe/.*') == true]", "not comparable"),
        ("$[?value(@..color)]", "must be compared"),
        ("$[?length(@.a)]", "must be compared"),
        ("$[?count(@.a)]", "must be compared"),
        ("$[?bar(@.a)]", ""),
        ("$[?bar(@.a) == 1]", ""),
        ("$[9007199254740992]", ""),
        // RFC 9535's own example, which the JSONPath library answers with nothing: refused.
        ("$[?@[?@.b]]", "not supported"),
    ] {
        let err = FieldPath::parse(invalid).expect_err(invalid);
        assert!(err.contains(why), "{invalid}: {err}");
    }
}

/// Section 2.5: child and descendant segments.
#[test]
fn segments() {
    let doc = json!(["a", "b", "c", "d", "e", "f", "g"]);
    check(
        &doc,
        &[
            ("$[0, 3]", json!(["a", "d"])),
            ("$[0:2, 5]", json!(["a", "b", "f"])),
            ("$[0, 0]", json!(["a", "a"])),
        ],
    );
    let doc = json!({"o": {"j": 1, "k": 2}, "a": [5, 3, [{"j": 4}, {"k": 6}]]});
    let all = json!([{"j": 1, "k": 2}, [5, 3, [{"j": 4}, {"k": 6}]], 1, 2, 5, 3, [{"j": 4}, {"k": 6}], {"j": 4}, {"k": 6}, 4, 6]);
    check_unordered(
        &doc,
        &[
            ("$..j", json!([1, 4])),
            ("$..[0]", json!([5, {"j": 4}])),
            ("$..[*]", all.clone()),
            ("$..*", all),
            ("$..o", json!([{"j": 1, "k": 2}])),
            ("$.o..[*, *]", json!([1, 2, 2, 1])),
            ("$.a..[0, 1]", json!([5, 3, {"j": 4}, {"k": 6}])),
        ],
    );
}

/// Section 2.6: `null` is a value like any other.
#[test]
fn null_semantics() {
    let doc = json!({"a": null, "b": [null], "c": [{}], "null": 1});
    check(
        &doc,
        &[
            ("$.a", json!([null])),
            ("$.a[0]", json!([])),
            ("$.a.d", json!([])),
            ("$.b[0]", json!([null])),
            ("$.b[*]", json!([null])),
            ("$.b[?@]", json!([null])),
            ("$.b[?@==null]", json!([null])),
            ("$.c[?@.d==null]", json!([])),
            ("$.null", json!([1])),
        ],
    );
}

/// The direct walk and jsonpath-rust agree on every query both can answer, and the walk
/// takes only what it gets right: a name on a list selects nothing, escapes and lists of
/// names are jsonpath-rust's.
#[test]
fn the_direct_walk_is_exact() {
    let doc = json!({"a": ["x", "y"], "0": "zero", "a b": 1, "é": 2, "q'": 3, "\\u{1}": 4});
    check(
        &doc,
        &[
            ("$['a']['0']", json!([])),
            ("$.a[1]", json!(["y"])),
            ("$['0']", json!(["zero"])),
            ("$['a b']", json!([1])),
            ("$.é", json!([2])),
            ("$['q\\'']", json!([3])),
            ("$[\"q'\"]", json!([3])),
            ("$['a','0']", json!([["x", "y"], "zero"])),
            ("$[ 'a' ][ 0 ]", json!(["x"])),
            ("$.a[-1]", json!(["y"])),
        ],
    );
    for invalid in ["$.1", "$.&", "$[01]", "$['a'", "$ "] {
        assert!(FieldPath::parse(invalid).is_err(), "{invalid}");
    }
}
