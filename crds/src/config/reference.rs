//! The configuration reference chapter of the book (`docs/src/configuration.md`), rendered
//! from the key tables so the documentation lists exactly what the CRDs and the broker accept
//! (a drift test compares the checked-in chapter with this rendering).

use super::keys::{broker_value, expected, Check, ConfigType, BROKER_KEYS, TOPIC_KEYS};

/// The chapter as Markdown.
pub fn markdown() -> String {
    let mut out = String::from(
        "<!-- Generated from crds/src/config/keys.rs by \
         `UPDATE_CRDS=1 cargo test -p tributary-crds --test integration crd_drift::`; \
         do not edit. -->\n\n\
         # Configuration keys\n\n\
         Every Kafka configuration key Tributary knows is defined once, with its type and what a \
         value must look like: the KafkaTopic and KafkaCluster CRDs refuse other keys, the \
         operator reports a bad value as a condition, and the broker's config APIs \
         (CreateTopics, AlterConfigs, IncrementalAlterConfigs) answer it with INVALID_CONFIG.\n\n\
         ## Topic configs\n\n\
         Set per topic in `KafkaTopic.spec.config`, with `--config` of `kafka-topics.sh`, or \
         through the admin API. Where a broker key is named, it holds the default for every \
         topic, and may be changed at runtime (`kafka-configs.sh --entity-type brokers`).\n\n\
         | key | type | valid values | broker default | what it does |\n\
         | --- | --- | --- | --- | --- |\n",
    );
    for key in TOPIC_KEYS {
        let default = key
            .broker_key
            .map_or_else(String::new, |b| format!("`{b}`"));
        out.push_str(&format!(
            "| `{}` | {} | {} | {default} | {} |\n",
            key.name,
            type_name(key.kind),
            expected(key.kind, key.check),
            key.doc
        ));
    }
    out.push_str(
        "\n## Broker configs of a KafkaCluster\n\n\
         What `KafkaCluster.spec.config` may set; the operator renders it into every broker's \
         `server.properties`. Settings the operator derives itself (broker ids, listeners, \
         advertised listeners, log directories, racks) are not among them.\n\n\
         | key | type | valid values |\n\
         | --- | --- | --- |\n",
    );
    for key in BROKER_KEYS {
        let (kind, check) = broker_value(key.name).unwrap_or((ConfigType::String, Check::Type));
        out.push_str(&format!(
            "| `{}` | {} | {} |\n",
            key.name,
            type_name(kind),
            expected(kind, check)
        ));
    }
    out
}

fn type_name(kind: ConfigType) -> &'static str {
    match kind {
        ConfigType::Boolean => "boolean",
        ConfigType::String => "string",
        ConfigType::Int => "int",
        ConfigType::Long => "long",
        ConfigType::Double => "double",
        ConfigType::List => "list",
        ConfigType::Password => "password",
    }
}
