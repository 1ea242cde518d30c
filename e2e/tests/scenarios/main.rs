//! The e2e scenarios: one module of scenarios ([`scenario`]), two drivers ([`env::Driver`]).
//! `local::*` runs each scenario against the local control plane (the API server, workload
//! controllers and kubelet stand-in of `tributary-e2e`, with the real helm, kubectl, operator,
//! brokers, Kafka clients and Prometheus); `kind::*` runs the same scenario against a kind
//! cluster (`e2e/kind/run.sh`, which builds the images, creates the cluster and runs these with
//! `--features kind`; without the feature they are listed as ignored).
//!
//! Scenarios share one environment (the chart installed once) when they only add objects in
//! namespaces of their own; `install`, `missing rule` and `operator failover` get one of their
//! own because they install, upgrade, uninstall or kill the operator, or install it unlike the
//! others.

#[path = "../support/mod.rs"]
mod support;

mod env;
mod kind;
mod local;
mod scenario;

/// Declares every scenario once; each becomes a test in `local` and in `kind`.
macro_rules! scenarios {
    ($($(#[ignore = $why:literal])? $name:ident => $body:path;)*) => {
        /// The scenarios, by test name.
        const SCENARIOS: &[&str] = &[$(stringify!($name)),*];

        mod local_driver {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                $(#[ignore = $why])?
                async fn $name() {
                    crate::env::timed(stringify!($name), $body(crate::env::Driver::Local)).await;
                }
            )*
        }

        mod kind_driver {
            $(
                kind_test!($(#[ignore = $why])? $name => $body);
            )*
        }
    };
}

/// A kind test: ignored unless built with `--features kind` (or with its scenario's reason).
macro_rules! kind_test {
    (#[ignore = $why:literal] $name:ident => $body:path) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        #[ignore = $why]
        async fn $name() {
            crate::env::timed(stringify!($name), $body(crate::env::Driver::Kind)).await;
        }
    };
    ($name:ident => $body:path) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        #[cfg_attr(
            not(feature = "kind"),
            ignore = "kind driver: e2e/kind/run.sh runs it on a kind cluster"
        )]
        async fn $name() {
            crate::env::timed(stringify!($name), $body(crate::env::Driver::Kind)).await;
        }
    };
}

scenarios! {
    helm_installs_the_chart_whose_operator_takes_its_lease_applies_the_crds_and_upgrades_and_uninstalls
        => crate::scenario::install::run;
    a_chart_missing_one_rule_the_operator_needs_names_it_in_the_operator_log_and_the_cluster_condition_and_makes_no_broker
        => crate::scenario::missing_rule::run;
    the_example_kafka_cluster_becomes_ready_and_every_broker_serves_kafka_and_metrics
        => crate::scenario::cluster::run;
    the_standby_operator_takes_over_within_the_lease_when_the_leader_is_killed_and_reconciles_the_next_change
        => crate::scenario::failover::run;
    invalid_clusters_and_topics_are_refused_or_reported_and_nothing_crashes
        => crate::scenario::bad_input::run;
    prometheus_scrapes_the_operator_and_brokers_and_the_chart_alert_rules_evaluate
        => crate::scenario::prometheus::run;
    a_kafka_topic_is_provisioned_serves_java_clients_grows_takes_config_and_is_deleted_from_every_broker
        => crate::scenario::topics::run;
    a_leader_killed_with_sigkill_fails_over_to_an_in_sync_follower_rejoins_and_loses_no_acknowledged_record
        => crate::scenario::durability::run;
    failure_of_a_leader_killed_mid_production_loses_nothing_and_the_restarted_broker_rejoins_every_isr
        => crate::scenario::failure::run;
    rolling_a_config_change_then_an_image_change_restart_each_broker_in_turn_after_it_hands_over_its_leaderships_and_loses_nothing
        => crate::scenario::rolling::run;
    freeze_a_frozen_leader_fences_itself_and_frozen_followers_stop_acks_below_min_isr_and_nothing_is_lost
        => crate::scenario::freeze::run;
    scaling_out_spreads_replicas_by_bounded_moves_scaling_in_drains_first_and_an_impossible_scale_in_is_refused
        => crate::scenario::scaling::run;
    replication_factor_1_to_3_copies_a_topics_data_to_two_new_replicas_that_survive_the_first_brokers_loss
        => crate::scenario::replication_factor::run;
    reassignment_by_the_admin_api_moves_a_partition_off_its_leader_and_its_kafkapartition_shows_it
        => crate::scenario::reassignment::run;
    security_tls_scram_and_mutual_tls_listeners_with_kafka_users_whose_secrets_work_whose_acls_hold_and_whose_deletion_revokes_them
        => crate::scenario::security::run;
    external_nodeport_and_loadbalancer_listeners_advertise_each_brokers_own_service_and_serve_java_clients_from_outside
        => crate::scenario::external::run;
    fresh_topic_an_idempotent_producer_writing_into_a_topic_the_moment_it_is_created_has_every_record_acknowledged_once
        => crate::scenario::fresh_topic::run;
    schemas_a_cluster_s_schema_registry_serves_kafka_schema_objects_and_survives_its_writer_s_kill
        => crate::scenario::schemas::run;
}

/// The names `--list` shows under `prefix`.
fn listed(all: &str, prefix: &str) -> Vec<String> {
    let mut names: Vec<String> = all
        .lines()
        .filter_map(|l| l.strip_suffix(": test"))
        .filter_map(|n| n.strip_prefix(prefix))
        .map(str::to_owned)
        .collect();
    names.sort();
    names
}

#[test]
fn the_local_and_kind_drivers_list_the_same_scenarios() {
    let out = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args(["--list", "--include-ignored"])
        .output()
        .expect("list the tests");
    let all = String::from_utf8_lossy(&out.stdout);
    let local = listed(&all, "local_driver::");
    let kind = listed(&all, "kind_driver::");
    let mut declared: Vec<String> = SCENARIOS.iter().map(|s| (*s).to_owned()).collect();
    declared.sort();
    assert_eq!(local, declared, "local driver:\n{all}");
    assert_eq!(kind, declared, "kind driver:\n{all}");
    // The kind script runs exactly this binary's kind tests, with the feature that enables them.
    let script = std::fs::read_to_string(tributary_e2e::tools::repo_root().join("e2e/kind/run.sh"))
        .expect("e2e/kind/run.sh");
    assert!(
        script.contains("--features kind --test scenarios") && script.contains("kind_driver::"),
        "e2e/kind/run.sh must run `cargo test -p tributary-e2e --features kind --test scenarios kind_driver::`"
    );
}

/// Every shell script of the repository: the kind driver, CI's and the test command's scripts.
const SHELL_SCRIPTS: &[&str] = &[
    "e2e/kind/run.sh",
    ".ci/run",
    ".ci/stage",
    ".ci/flake-hunt",
    ".ci/install-tools.sh",
    "broker/tests/librdkafka/run.sh",
];

#[test]
fn the_shell_scripts_are_shellcheck_clean() {
    let root = tributary_e2e::tools::repo_root();
    let out = std::process::Command::new("shellcheck")
        .args(SHELL_SCRIPTS.iter().map(|s| root.join(s)))
        .output()
        .expect(
            "shellcheck is not installed: run .ci/install-tools.sh (Debian package shellcheck)",
        );
    assert!(
        out.status.success(),
        "shellcheck {SHELL_SCRIPTS:?}:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
