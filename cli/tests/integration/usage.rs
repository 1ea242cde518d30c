//! Usage errors (exit 2), an unreachable broker (exit 1) and shell completion: no broker needed.

use crate::common;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use common::{trib, trib_with_input};

/// An address nothing listens on: bind a port, then free it.
fn dead_address() -> String {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    drop(l);
    addr.to_string()
}

#[test]
fn unknown_flags_and_commands_exit_2() {
    trib("x:1", &["topic", "list", "--bogus"]).fails(2, &["--bogus"]);
    trib("x:1", &["nonsense"]).fails(2, &["nonsense"]);
    trib("x:1", &[]).fails(2, &["Usage"]);
    trib("x:1", &["topic", "create"]).fails(2, &["<TOPICS>"]);
}

#[test]
fn bad_values_exit_2_with_the_accepted_forms() {
    trib("x:1", &["consume", "t", "-o", "soon"]).fails(2, &["oldest", "@TIME"]);
    trib("x:1", &["consume", "t", "-f", "%q"]).fails(2, &["%q", "%v value"]);
    trib("x:1", &["consume", "t", "-p", "a"]).fails(2, &["partition"]);
    trib("x:1", &["consume", "t", "--from-beginning", "-o", "5"]).fails(2, &["cannot be used"]);
    trib("x:1", &["produce", "t", "--acks", "2"]).fails(2, &["--acks"]);
    trib("x:1", &["produce", "t", "-H", "=v"]).fails(2, &["empty key"]);
    trib("x:1", &["topic", "create", "t", "-p", "0"]).fails(2, &["--partitions"]);
    trib("x:1", &["-X", "novalue", "cluster", "info"]).fails(2, &["key=value"]);
    trib("x:1", &["--timeout", "fast", "cluster", "info"]).fails(2, &["duration"]);
}

#[test]
fn unknown_client_settings_exit_2() {
    trib(
        &dead_address(),
        &["-X", "no.such.setting=1", "cluster", "info"],
    )
    .fails(2, &["no.such.setting", "CONFIGURATION.md"]);
}

#[test]
fn a_group_cannot_start_at_an_exact_offset() {
    trib(&dead_address(), &["consume", "t", "-g", "g", "-o", "5"])
        .fails(2, &["trib group reset-offsets"]);
}

#[test]
fn an_unreachable_broker_fails_fast_with_exit_1() {
    let addr = dead_address();
    for args in [
        &["cluster", "info"][..],
        &["topic", "list"],
        &["consume", "t"],
        &["topic", "create", "t"],
    ] {
        let start = Instant::now();
        let r = trib(&addr, args);
        r.fails(1, &["cannot reach a broker at", &addr, "--brokers"]);
        assert!(
            start.elapsed() < Duration::from_secs(8),
            "{args:?} took {:?}, longer than the 10s timeout allows to notice",
            start.elapsed()
        );
    }
    let r = trib_with_input(&addr, &["produce", "t"], b"x\n");
    r.fails(1, &["cannot reach a broker"]);
}

#[test]
fn brokers_come_from_the_flag_over_the_environment() {
    let addr = dead_address();
    let r = trib("env-host:1", &["cluster", "info", "-b", &addr]);
    r.fails(1, &[&addr]);
    let r = trib(&addr, &["cluster", "info"]);
    r.fails(1, &[&addr]);
}

#[test]
fn json_errors_are_machine_readable() {
    let r = trib(&dead_address(), &["topic", "list", "--json"]);
    assert_eq!(r.code, 1);
    let v: serde_json::Value = serde_json::from_str(r.stderr.trim()).expect("JSON on stderr");
    assert_eq!(v["kind"], "unreachable");
}

#[test]
fn completion_scripts_are_generated() {
    for shell in ["bash", "zsh", "fish"] {
        let r = trib("x:1", &["completion", shell]);
        assert!(r.ok().contains("trib"), "{shell}");
        assert!(r.stdout.contains("consume"), "{shell}");
    }
    trib("x:1", &["completion", "tcsh"]).fails(2, &["tcsh"]);
}

#[test]
fn help_and_version_exit_0() {
    assert!(trib("x:1", &["--help"]).ok().contains("Exit codes"));
    assert!(trib("x:1", &["--version"]).ok().starts_with("trib "));
    assert!(trib("x:1", &["consume", "--help"])
        .ok()
        .contains("--from-beginning"));
}
