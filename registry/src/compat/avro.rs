//! Avro compatibility through apache-avro's reader/writer resolution check, which follows the
//! Avro specification's schema resolution rules (field defaults, promotions such as int to
//! long, enum symbols, unions, named types), the same rules Confluent's registry applies.

use apache_avro::schema_compatibility::SchemaCompatibility;
use apache_avro::Schema;

/// The reasons data written with `writer` cannot be read with `reader`; empty when it can.
pub fn can_read(writer: &Schema, reader: &Schema) -> Vec<String> {
    let result = std::panic::catch_unwind(|| SchemaCompatibility::can_read(writer, reader));
    match result {
        Ok(Ok(())) => Vec::new(),
        Ok(Err(e)) => vec![e.to_string()],
        Err(_) => vec!["The schemas could not be compared".to_string()],
    }
}

#[cfg(test)]
mod tests {
    use super::super::{check, CompatibilityLevel, PreviousVersion};
    use crate::schema::{parse, ParsedSchema, SchemaType};

    fn avro(text: &str) -> ParsedSchema {
        match parse(SchemaType::Avro, text, &[]) {
            Ok(s) => s,
            Err(e) => panic!("test schema does not parse: {e}"),
        }
    }

    fn record(fields: &str) -> ParsedSchema {
        avro(&format!(
            r#"{{"type":"record","name":"User","namespace":"t","fields":[{fields}]}}"#
        ))
    }

    const ID: &str = r#"{"name":"id","type":"int"}"#;
    const NAME_NO_DEFAULT: &str = r#"{"name":"name","type":"string"}"#;
    const NAME_DEFAULT: &str = r#"{"name":"name","type":"string","default":"x"}"#;

    fn compatible(level: CompatibilityLevel, old: &[&ParsedSchema], new: &ParsedSchema) -> bool {
        let previous: Vec<PreviousVersion<'_>> = old
            .iter()
            .enumerate()
            .map(|(i, s)| PreviousVersion {
                version: i as u32 + 1,
                text: "",
                schema: s,
            })
            .collect();
        check(level, new, &previous).is_empty()
    }

    use CompatibilityLevel::*;

    #[test]
    fn adding_a_field_without_default_breaks_backward_but_not_forward() {
        let v1 = record(ID);
        let v2 = record(&format!("{ID},{NAME_NO_DEFAULT}"));
        assert!(!compatible(Backward, &[&v1], &v2));
        assert!(compatible(Forward, &[&v1], &v2));
        assert!(!compatible(Full, &[&v1], &v2));
        assert!(compatible(None, &[&v1], &v2));
    }

    #[test]
    fn adding_a_field_with_default_is_fully_compatible() {
        let v1 = record(ID);
        let v2 = record(&format!("{ID},{NAME_DEFAULT}"));
        for level in [
            Backward,
            Forward,
            Full,
            BackwardTransitive,
            ForwardTransitive,
            FullTransitive,
        ] {
            assert!(compatible(level, &[&v1], &v2), "{level:?}");
        }
    }

    #[test]
    fn removing_a_field_without_default_breaks_forward_only() {
        let v1 = record(&format!("{ID},{NAME_NO_DEFAULT}"));
        let v2 = record(ID);
        assert!(compatible(Backward, &[&v1], &v2));
        assert!(!compatible(Forward, &[&v1], &v2));
        assert!(!compatible(Full, &[&v1], &v2));
    }

    #[test]
    fn removing_a_field_with_default_is_fully_compatible() {
        let v1 = record(&format!("{ID},{NAME_DEFAULT}"));
        let v2 = record(ID);
        assert!(compatible(Full, &[&v1], &v2));
    }

    #[test]
    fn int_to_long_is_a_backward_promotion_only() {
        let v1 = record(ID);
        let v2 = record(r#"{"name":"id","type":"long"}"#);
        assert!(compatible(Backward, &[&v1], &v2));
        assert!(!compatible(Forward, &[&v1], &v2));
        let v3 = record(r#"{"name":"id","type":"string"}"#);
        assert!(!compatible(Backward, &[&v1], &v3));
    }

    #[test]
    fn enum_symbols_added_read_old_data_but_removed_do_not() {
        let e = |symbols: &str| {
            avro(&format!(
                r#"{{"type":"enum","name":"Color","symbols":[{symbols}]}}"#
            ))
        };
        let rg = e(r#""RED","GREEN""#);
        let rgb = e(r#""RED","GREEN","BLUE""#);
        assert!(compatible(Backward, &[&rg], &rgb));
        assert!(!compatible(Forward, &[&rg], &rgb));
        assert!(!compatible(Backward, &[&rgb], &rg));
        assert!(compatible(Forward, &[&rgb], &rg));
    }

    #[test]
    fn transitive_levels_check_every_previous_version() {
        // v1 has no name; v2 adds it with a default; v3 drops the default. v3 reads v2's data
        // but not v1's.
        let v1 = record(ID);
        let v2 = record(&format!("{ID},{NAME_DEFAULT}"));
        let v3 = record(&format!("{ID},{NAME_NO_DEFAULT}"));
        assert!(compatible(Backward, &[&v1, &v2], &v3));
        assert!(!compatible(BackwardTransitive, &[&v1, &v2], &v3));
        assert!(!compatible(FullTransitive, &[&v1, &v2], &v3));
    }

    #[test]
    fn forward_transitive_checks_every_previous_reader() {
        let v1 = record(&format!("{ID},{NAME_NO_DEFAULT}"));
        let v2 = record(&format!("{ID},{NAME_DEFAULT}"));
        let v3 = record(ID);
        assert!(compatible(Forward, &[&v1, &v2], &v3));
        assert!(!compatible(ForwardTransitive, &[&v1, &v2], &v3));
    }

    #[test]
    fn a_different_schema_type_is_incompatible() {
        let a = record(ID);
        let j = match parse(SchemaType::Json, "{}", &[]) {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        };
        assert!(!compatible(Backward, &[&a], &j));
    }

    #[test]
    fn messages_name_the_old_version_and_level() {
        let v1 = record(ID);
        let v2 = record(&format!("{ID},{NAME_NO_DEFAULT}"));
        let previous = [PreviousVersion {
            version: 1,
            text: "v1",
            schema: &v1,
        }];
        let messages = check(Backward, &v2, &previous);
        assert!(messages.iter().any(|m| m.contains("name")), "{messages:?}");
        assert!(messages.contains(&"{oldSchemaVersion: 1}".to_string()));
        assert!(messages.contains(&"{compatibility: 'BACKWARD'}".to_string()));
    }
}
