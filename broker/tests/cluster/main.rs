//! Cluster mode against the in-memory Kubernetes API: brokers register, build their image from
//! the cluster's objects, and write KafkaTopics for the Kafka admin API.

mod image;
mod registration;
mod source;
mod support;
