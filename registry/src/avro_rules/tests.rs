//! One table per rule: schemas Avro Java (as Confluent runs it on a new schema) accepts, and
//! schemas it refuses with the reason expected in the message.

use serde_json::{json, Value};

use super::check;

/// `Ok` for a schema that must pass, `Err(part of the message)` for one that must not.
type Case = (&'static str, String, Result<(), &'static str>);

/// Runs every case and fails listing each one that got another answer.
fn assert_cases(cases: Vec<Case>) {
    assert_cases_with(cases, &[]);
}

fn assert_cases_with(cases: Vec<Case>, referenced: &[&str]) {
    let mut failures = Vec::new();
    for (what, schema, want) in cases {
        let got = check(&schema, referenced);
        let ok = match (&got, want) {
            (Ok(()), Ok(())) => true,
            (Err(message), Err(part)) => message.contains(part),
            _ => false,
        };
        if !ok {
            failures.push(format!("{what}: {schema}\n  want {want:?}\n  got  {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A record `R` with these fields.
fn record(fields: Value) -> String {
    json!({"type": "record", "name": "R", "fields": fields}).to_string()
}

/// A record `R` with one field `f` of `ty`, with `default` when it is not null.
fn field(ty: Value, default: Option<Value>) -> String {
    let mut f = json!({"name": "f", "type": ty});
    if let Some(d) = default {
        f["default"] = d;
    }
    record(json!([f]))
}

fn named(kind: &str, name: &str, extra: Value) -> String {
    let mut v = json!({"type": kind, "name": name});
    if let (Some(v), Value::Object(extra)) = (v.as_object_mut(), extra) {
        v.extend(extra);
    }
    v.to_string()
}

#[test]
fn the_issue_schema_with_array_as_a_type_name_is_refused() {
    assert_cases(vec![
        (
            "array used as a name",
            record(json!([{"name": "key", "type": "array", "items": "string"}])),
            Err("\"array\" is not a defined name. The type of the \"key\" field must be a defined name or a {\"type\": ...} expression."),
        ),
        (
            "map used as a name",
            record(json!([{"name": "m", "type": "map", "values": "int"}])),
            Err("\"map\" is not a defined name"),
        ),
        (
            "the correct form",
            record(json!([{"name": "key", "type": {"type": "array", "items": "string"}}])),
            Ok(()),
        ),
    ]);
}

#[test]
fn names_are_ascii_letters_digits_and_underscores() {
    let r = |name: &str| named("record", name, json!({"fields": []}));
    assert_cases(vec![
        ("a plain name", r("User_1"), Ok(())),
        ("a leading underscore", r("_u"), Ok(())),
        (
            "a leading digit",
            r("1User"),
            Err("Illegal initial character: 1User"),
        ),
        ("a dash", r("User-1"), Err("Illegal character in: User-1")),
        (
            "a non-ASCII letter",
            r("Usér"),
            Err("Illegal character in: Usér"),
        ),
        ("empty", r(""), Err("Empty name")),
        ("a dotted full name", r("a.b.User"), Ok(())),
        (
            "a bad last part",
            r("a.b.1User"),
            Err("Illegal initial character: 1User"),
        ),
        (
            "a bad namespace part",
            r("a.1b.User"),
            Err("Namespace part \"1b\" is invalid"),
        ),
        (
            "a bad namespace key",
            named("record", "User", json!({"namespace": "a..b", "fields": []})),
            Err("Namespace part \"\" is invalid: Empty name"),
        ),
        (
            "an empty namespace key",
            named("record", "User", json!({"namespace": "", "fields": []})),
            Ok(()),
        ),
        (
            "no name",
            json!({"type": "record", "fields": []}).to_string(),
            Err("No name in schema"),
        ),
        (
            "a name that is not a string",
            json!({"type": "enum", "name": 7, "symbols": []}).to_string(),
            Err("No name in schema"),
        ),
        (
            "named after a primitive",
            r("int"),
            Err("Schemas may not be named after primitives: int"),
        ),
        ("a primitive name in a namespace", r("x.int"), Ok(())),
        (
            "a field name",
            record(json!([{"name": "my-field", "type": "int"}])),
            Err("Illegal character in: my-field"),
        ),
        (
            "an enum symbol",
            named("enum", "E", json!({"symbols": ["A", "1B"]})),
            Err("Illegal initial character: 1B"),
        ),
        (
            "a fixed name",
            named("fixed", "F-1", json!({"size": 1})),
            Err("Illegal character in: F-1"),
        ),
    ]);
}

#[test]
fn a_name_is_defined_once_or_again_identically() {
    let e = |symbols: Value| json!({"type": "enum", "name": "E", "symbols": symbols});
    assert_cases(vec![
        (
            "redefined differently",
            record(
                json!([{"name": "a", "type": e(json!(["A"]))}, {"name": "b", "type": e(json!(["B"]))}]),
            ),
            Err("Can't redefine: E"),
        ),
        (
            "repeated identically",
            record(
                json!([{"name": "a", "type": e(json!(["A"]))}, {"name": "b", "type": e(json!(["A"]))}]),
            ),
            Ok(()),
        ),
        (
            "a nested record of the outer record's name",
            record(json!([{"name": "a", "type": {"type": "record", "name": "R", "fields": []}}])),
            Err("Can't redefine: R"),
        ),
        (
            "the same short name in two namespaces",
            record(json!([
                {"name": "a", "type": {"type": "fixed", "name": "F", "namespace": "x", "size": 1}},
                {"name": "b", "type": {"type": "fixed", "name": "F", "namespace": "y", "size": 2}},
            ])),
            Ok(()),
        ),
    ]);
}

#[test]
fn names_used_are_primitives_or_defined_by_the_end() {
    let e = json!({"type": "enum", "name": "E", "namespace": "ns", "symbols": ["A"]});
    assert_cases(vec![
        (
            "a primitive",
            record(json!([{"name": "a", "type": "long"}])),
            Ok(()),
        ),
        (
            "an undefined name",
            record(json!([{"name": "a", "type": "Missing"}])),
            Err("\"Missing\" is not a defined name. The type of the \"a\" field"),
        ),
        (
            "an undefined name in a union",
            record(json!([{"name": "a", "type": ["null", "Missing"]}])),
            Err("Undefined schema: Missing"),
        ),
        (
            "an undefined name, qualified by the record's namespace",
            named(
                "record",
                "R",
                json!({"namespace": "ns", "fields": [{"name": "a", "type": ["null", "Missing"]}]}),
            ),
            Err("Undefined schema: ns.Missing"),
        ),
        (
            "a name defined before, by its full name",
            record(json!([{"name": "a", "type": e}, {"name": "b", "type": "ns.E"}])),
            Ok(()),
        ),
        (
            "a name defined before, in the record's namespace",
            named(
                "record",
                "R",
                json!({"namespace": "ns", "fields": [{"name": "a", "type": e}, {"name": "b", "type": "E"}]}),
            ),
            Ok(()),
        ),
        (
            "a short name outside its namespace",
            record(json!([{"name": "a", "type": e}, {"name": "b", "type": "E"}])),
            Err("\"E\" is not a defined name"),
        ),
        (
            "a record's own name in its fields",
            named(
                "record",
                "Node",
                json!({"fields": [{"name": "next", "type": ["null", "Node"]}]}),
            ),
            Ok(()),
        ),
        (
            "a name defined later in the schema (Avro 1.12)",
            record(json!([{"name": "a", "type": ["null", "ns.E"]}, {"name": "b", "type": e}])),
            Ok(()),
        ),
        (
            "a name as an object's type",
            record(json!([{"name": "a", "type": e}, {"name": "b", "type": {"type": "ns.E"}}])),
            Ok(()),
        ),
        (
            "a bare undefined name",
            json!("Missing").to_string(),
            Err("Undefined schema: Missing"),
        ),
        ("a primitive alone", json!("string").to_string(), Ok(())),
        (
            "a primitive as an object",
            json!({"type": "string"}).to_string(),
            Ok(()),
        ),
        (
            "a type that is an object",
            json!({"type": {"type": "string"}}).to_string(),
            Err("No type"),
        ),
        ("no type", json!({"name": "x"}).to_string(), Err("No type")),
        (
            "a number",
            "5".to_owned(),
            Err("Schema not yet supported: 5"),
        ),
        ("not JSON", "{".to_owned(), Err("not JSON")),
    ]);
}

#[test]
fn referenced_schemas_define_names_by_the_same_rules() {
    let inner = json!({"type": "record", "name": "Inner", "namespace": "x", "fields": [{"name": "a", "type": "int"}]}).to_string();
    assert_cases_with(
        vec![
            (
                "a referenced name",
                record(json!([{"name": "i", "type": "x.Inner"}])),
                Ok(()),
            ),
            (
                "a referenced name with a default",
                record(json!([{"name": "i", "type": "x.Inner", "default": {"a": 1}}])),
                Ok(()),
            ),
            (
                "a referenced record's default missing a field",
                record(json!([{"name": "i", "type": "x.Inner", "default": {}}])),
                Err("Invalid default for field i"),
            ),
            (
                "a referenced name redefined",
                record(
                    json!([{"name": "i", "type": {"type": "record", "name": "Inner", "namespace": "x", "fields": []}}]),
                ),
                Err("Can't redefine: x.Inner"),
            ),
        ],
        &[&inner],
    );
    assert_eq!(
        check(
            &record(json!([{"name": "i", "type": "x.Inner"}])),
            &["{\"type\":\"recor\"}"]
        ),
        Err("Undefined schema: recor".to_owned())
    );
}

#[test]
fn records_have_an_array_of_uniquely_named_typed_fields() {
    assert_cases(vec![
        (
            "no fields",
            json!({"type": "record", "name": "R"}).to_string(),
            Err("Record has no fields"),
        ),
        (
            "fields not an array",
            named("record", "R", json!({"fields": {}})),
            Err("Record has no fields"),
        ),
        ("no fields at all is fine", record(json!([])), Ok(())),
        (
            "an error type",
            named("error", "Oops", json!({"fields": []})),
            Ok(()),
        ),
        (
            "a field without a name",
            record(json!([{"type": "int"}])),
            Err("No field name"),
        ),
        (
            "a field that is not an object",
            record(json!(["int"])),
            Err("No field name"),
        ),
        (
            "a field without a type",
            record(json!([{"name": "a"}])),
            Err("No field type"),
        ),
        (
            "two fields of one name",
            record(json!([{"name": "a", "type": "int"}, {"name": "a", "type": "string"}])),
            Err("Duplicate field a in record R"),
        ),
        (
            "the orders",
            record(json!([
                {"name": "a", "type": "int", "order": "ascending"},
                {"name": "b", "type": "int", "order": "DESCENDING"},
                {"name": "c", "type": "int", "order": "ignore"},
            ])),
            Ok(()),
        ),
        (
            "an unknown order",
            record(json!([{"name": "a", "type": "int", "order": "sideways"}])),
            Err("Invalid order \"sideways\" of field a"),
        ),
        (
            "an order that is not a string",
            record(json!([{"name": "a", "type": "int", "order": 1}])),
            Err("Invalid order 1 of field a"),
        ),
    ]);
}

#[test]
fn enums_have_unique_symbols_and_a_default_among_them() {
    let e = |extra: Value| named("enum", "E", extra);
    assert_cases(vec![
        ("symbols", e(json!({"symbols": ["A", "B"]})), Ok(())),
        ("no symbols", e(json!({})), Err("Enum has no symbols")),
        (
            "symbols not an array",
            e(json!({"symbols": "A"})),
            Err("Enum has no symbols"),
        ),
        (
            "a repeated symbol",
            e(json!({"symbols": ["A", "A"]})),
            Err("Duplicate enum symbol: A"),
        ),
        (
            "a symbol not a string",
            e(json!({"symbols": ["A", 1]})),
            Err("Enum symbol 1 is not a string"),
        ),
        (
            "a default among them",
            e(json!({"symbols": ["A", "B"], "default": "B"})),
            Ok(()),
        ),
        (
            "a default not among them",
            e(json!({"symbols": ["A", "B"], "default": "C"})),
            Err("The Enum Default: C is not in the enum symbol set: [A, B]"),
        ),
        (
            "a default not a string is ignored",
            e(json!({"symbols": ["A"], "default": 1})),
            Ok(()),
        ),
    ]);
}

#[test]
fn a_fixed_size_is_an_int_from_zero() {
    let f = |size: Value| named("fixed", "F", json!({"size": size}));
    assert_cases(vec![
        ("16", f(json!(16)), Ok(())),
        ("0", f(json!(0)), Ok(())),
        (
            "negative",
            f(json!(-1)),
            Err("Malformed data. Length is negative: -1"),
        ),
        ("a string", f(json!("16")), Err("Invalid or no size")),
        ("a fraction", f(json!(1.5)), Err("Invalid or no size")),
        (
            "beyond an int",
            f(json!(2_147_483_648_i64)),
            Err("Invalid or no size"),
        ),
        (
            "beyond Java's arrays",
            f(json!(i32::MAX)),
            Err("Cannot read arrays longer than"),
        ),
        (
            "no size",
            named("fixed", "F", json!({})),
            Err("Invalid or no size"),
        ),
    ]);
}

#[test]
fn unions_hold_no_union_and_no_two_branches_of_one_name() {
    let e = json!({"type": "enum", "name": "E", "symbols": ["A"]});
    assert_cases(vec![
        (
            "null or string",
            json!(["null", "string"]).to_string(),
            Ok(()),
        ),
        ("empty", json!([]).to_string(), Ok(())),
        (
            "a nested union",
            json!(["int", ["string"]]).to_string(),
            Err("Nested union"),
        ),
        (
            "two ints",
            json!(["int", "int"]).to_string(),
            Err("Duplicate in union:int"),
        ),
        (
            "an int and an int object",
            json!(["int", {"type": "int"}]).to_string(),
            Err("Duplicate in union:int"),
        ),
        (
            "two arrays",
            json!([{"type": "array", "items": "int"}, {"type": "array", "items": "string"}])
                .to_string(),
            Err("Duplicate in union:array"),
        ),
        (
            "two maps",
            json!([{"type": "map", "values": "int"}, {"type": "map", "values": "string"}])
                .to_string(),
            Err("Duplicate in union:map"),
        ),
        (
            "an array and a map",
            json!([{"type": "array", "items": "int"}, {"type": "map", "values": "int"}])
                .to_string(),
            Ok(()),
        ),
        (
            "a named type twice",
            record(json!([{"name": "a", "type": e}, {"name": "b", "type": ["E", "E"]}])),
            Err("Duplicate in union:E"),
        ),
        (
            "two named types",
            json!([e, {"type": "fixed", "name": "F", "size": 1}]).to_string(),
            Ok(()),
        ),
        (
            "an array without items",
            json!({"type": "array"}).to_string(),
            Err("Array has no items type"),
        ),
        (
            "a map without values",
            json!({"type": "map"}).to_string(),
            Err("Map has no values type"),
        ),
    ]);
}

#[test]
fn aliases_are_arrays_of_strings_and_type_aliases_are_names() {
    assert_cases(vec![
        (
            "type aliases",
            named(
                "record",
                "R",
                json!({"fields": [], "aliases": ["Old", "x.Older"]}),
            ),
            Ok(()),
        ),
        (
            "aliases not an array",
            named("record", "R", json!({"fields": [], "aliases": "Old"})),
            Err("aliases not an array"),
        ),
        (
            "an alias not a string",
            named("enum", "E", json!({"symbols": [], "aliases": [1]})),
            Err("alias not a string: 1"),
        ),
        (
            "a type alias not a name",
            named("fixed", "F", json!({"size": 1, "aliases": ["1F"]})),
            Err("Illegal initial character: 1F"),
        ),
        (
            "field aliases may be any strings",
            record(json!([{"name": "a", "type": "int", "aliases": ["old-a"]}])),
            Ok(()),
        ),
        (
            "field aliases not an array",
            record(json!([{"name": "a", "type": "int", "aliases": "b"}])),
            Err("aliases not an array"),
        ),
    ]);
}

#[test]
fn defaults_match_their_types() {
    let t = |v: Value| Some(v);
    let inner = json!({"type": "record", "name": "I", "fields": [
        {"name": "a", "type": "int"},
        {"name": "b", "type": "string", "default": "x"},
        {"name": "u", "type": ["null", "string"], "default": null},
    ]});
    let cases: Vec<(&str, Value, Option<Value>, bool)> = vec![
        ("no default", json!("string"), None, true),
        ("string", json!("string"), t(json!("x")), true),
        ("string null", json!("string"), t(json!(null)), false),
        ("string number", json!("string"), t(json!(1)), false),
        ("bytes", json!("bytes"), t(json!("\u{ff}")), true),
        ("bytes array", json!("bytes"), t(json!([1])), false),
        ("int", json!("int"), t(json!(1)), true),
        (
            "int beyond 32 bits",
            json!("int"),
            t(json!(3_000_000_000_i64)),
            false,
        ),
        ("int 1.0", json!("int"), t(json!(1.0)), false),
        ("int string", json!("int"), t(json!("1")), false),
        (
            "long beyond 32 bits",
            json!("long"),
            t(json!(3_000_000_000_i64)),
            true,
        ),
        (
            "long beyond 64 bits",
            json!("long"),
            t(json!(u64::MAX)),
            false,
        ),
        ("long fraction", json!("long"), t(json!(1.5)), false),
        ("float integer", json!("float"), t(json!(1)), true),
        ("float fraction", json!("float"), t(json!(1.5)), true),
        ("float bool", json!("float"), t(json!(true)), false),
        ("double NaN", json!("double"), t(json!("NaN")), true),
        (
            "double -Infinity",
            json!("double"),
            t(json!("-Infinity")),
            true,
        ),
        (
            "double exponent text",
            json!("double"),
            t(json!(" -1.5e3 ")),
            true,
        ),
        (
            "double suffix text",
            json!("double"),
            t(json!("1.5d")),
            true,
        ),
        (
            "double hex text",
            json!("double"),
            t(json!("0x1.8p1")),
            true,
        ),
        ("double inf", json!("double"), t(json!("inf")), false),
        (
            "double nan lower case",
            json!("double"),
            t(json!("nan")),
            false,
        ),
        ("double words", json!("double"), t(json!("abc")), false),
        (
            "float in a union, as text",
            json!(["float", "null"]),
            t(json!("NaN")),
            false,
        ),
        ("boolean", json!("boolean"), t(json!(false)), true),
        ("boolean text", json!("boolean"), t(json!("true")), false),
        ("null", json!("null"), t(json!(null)), true),
        ("null zero", json!("null"), t(json!(0)), false),
        (
            "array",
            json!({"type": "array", "items": "int"}),
            t(json!([1, 2])),
            true,
        ),
        (
            "array mixed",
            json!({"type": "array", "items": "int"}),
            t(json!([1, "a"])),
            false,
        ),
        (
            "array object",
            json!({"type": "array", "items": "int"}),
            t(json!({})),
            false,
        ),
        (
            "map",
            json!({"type": "map", "values": "string"}),
            t(json!({"k": "v"})),
            true,
        ),
        (
            "map bad value",
            json!({"type": "map", "values": "string"}),
            t(json!({"k": 1})),
            false,
        ),
        (
            "map array",
            json!({"type": "map", "values": "string"}),
            t(json!([])),
            false,
        ),
        (
            "union first branch",
            json!(["null", "string"]),
            t(json!(null)),
            true,
        ),
        (
            "union later branch (Avro 1.12)",
            json!(["null", "string"]),
            t(json!("x")),
            true,
        ),
        (
            "union no branch",
            json!(["null", "string"]),
            t(json!(1)),
            false,
        ),
        (
            "enum symbol",
            json!({"type": "enum", "name": "E", "symbols": ["A"]}),
            t(json!("A")),
            true,
        ),
        (
            "enum any text",
            json!({"type": "enum", "name": "E", "symbols": ["A"]}),
            t(json!("Z")),
            true,
        ),
        (
            "enum number",
            json!({"type": "enum", "name": "E", "symbols": ["A"]}),
            t(json!(0)),
            false,
        ),
        (
            "fixed text of any length",
            json!({"type": "fixed", "name": "F", "size": 4}),
            t(json!("ab")),
            true,
        ),
        (
            "fixed number",
            json!({"type": "fixed", "name": "F", "size": 4}),
            t(json!(1)),
            false,
        ),
        (
            "record with fields given",
            inner.clone(),
            t(json!({"a": 1, "b": "y", "u": "z"})),
            true,
        ),
        (
            "record taking field defaults",
            inner.clone(),
            t(json!({"a": 1})),
            true,
        ),
        (
            "record missing a field without default",
            inner.clone(),
            t(json!({"b": "y"})),
            false,
        ),
        (
            "record with a bad field",
            inner.clone(),
            t(json!({"a": "1"})),
            false,
        ),
        (
            "record with a null for a union",
            inner.clone(),
            t(json!({"a": 1, "u": null})),
            true,
        ),
        ("record array", inner, t(json!([])), false),
    ];
    let mut table = Vec::new();
    for (what, ty, default, valid) in cases {
        table.push((
            what,
            field(ty, default),
            if valid {
                Ok(())
            } else {
                Err("Invalid default for field f")
            },
        ));
    }
    assert_cases(table);
}

#[test]
fn a_default_of_a_type_not_yet_defined_is_any_object() {
    let node = |default: Value| {
        named(
            "record",
            "Node",
            json!({"fields": [
                {"name": "next", "type": ["null", "Node"], "default": null},
                {"name": "self", "type": "Node", "default": default},
            ]}),
        )
    };
    assert_cases(vec![
        ("an object", node(json!({})), Ok(())),
        (
            "a number",
            node(json!(1)),
            Err("Invalid default for field self"),
        ),
    ]);
}

#[test]
fn invalid_logical_types_are_ignored_as_avro_java_does() {
    let ty = |extra: Value| {
        let mut t = json!({"type": "bytes"});
        if let (Some(t), Value::Object(extra)) = (t.as_object_mut(), extra) {
            t.extend(extra);
        }
        field(t, None)
    };
    assert_cases(vec![
        (
            "a decimal",
            ty(json!({"logicalType": "decimal", "precision": 4, "scale": 2})),
            Ok(()),
        ),
        (
            "precision 0",
            ty(json!({"logicalType": "decimal", "precision": 0})),
            Ok(()),
        ),
        (
            "scale above precision",
            ty(json!({"logicalType": "decimal", "precision": 2, "scale": 3})),
            Ok(()),
        ),
        (
            "no precision",
            ty(json!({"logicalType": "decimal"})),
            Ok(()),
        ),
        (
            "a date on bytes",
            ty(json!({"logicalType": "date"})),
            Ok(()),
        ),
        (
            "an unknown one",
            ty(json!({"logicalType": "color"})),
            Ok(()),
        ),
        ("not a string", ty(json!({"logicalType": 5})), Ok(())),
        (
            "a uuid on a short fixed",
            field(
                json!({"type": "fixed", "name": "U", "size": 4, "logicalType": "uuid"}),
                None,
            ),
            Ok(()),
        ),
    ]);
}
