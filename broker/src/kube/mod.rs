//! Cluster mode: the broker's metadata lives in Kubernetes, with the API server in the role
//! ZooKeeper plays for Apache Kafka. The broker registers in its Lease ([`registration`]),
//! watches KafkaTopics, KafkaPartitions and broker Leases into cluster images ([`watcher`],
//! [`image`]), writes KafkaTopics for the Kafka admin API ([`source`]) and its leaders' ISR
//! changes to KafkaPartitions ([`isr`]), asks the controller for the elections of Kafka's
//! ElectLeaders through KafkaPartition annotations ([`elections`]), and reserves producer ids
//! in the cluster's ConfigMap ([`blocks`]); the ACLs and SCRAM credentials every broker applies
//! are shared in a ConfigMap and a Secret ([`document`]); external listeners advertise what their
//! per-broker Services give them ([`external`]).

pub mod blocks;
pub mod catch_up;
pub mod directory;
pub mod document;
pub mod elections;
mod error;
pub mod external;
pub mod image;
pub mod isr;
mod names;
pub mod reassignments;
pub mod registration;
pub mod shutdown;
pub mod source;
pub mod start;
pub mod watcher;

pub use error::KubeError;
