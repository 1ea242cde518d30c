//! Cluster mode against the in-memory Kubernetes API: brokers register, build their image from
//! the cluster's objects, and write KafkaTopics for the Kafka admin API; with the operator's
//! controllers in-process, real clients use the three brokers as one cluster.

mod coordinators;
mod elections;
mod external;
mod failover;
mod follower_fsync;
mod image;
mod operated;
mod quotas;
mod reassignment;
mod registration;
mod replication;
mod shared;
mod source;
mod support;
mod transactions;
