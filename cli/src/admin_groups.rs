//! librdkafka's ListConsumerGroups and DescribeConsumerGroups admin calls, which the rdkafka
//! crate does not wrap. They are the only client calls that see KIP-848 consumer groups:
//! ListConsumerGroups reports each group's type (ListGroups v5, KIP-1043), and
//! DescribeConsumerGroups describes consumer groups with ConsumerGroupDescribe (falling back to
//! DescribeGroups for classic groups), where the legacy group list only knows DescribeGroups.
//!
//! The only `unsafe` code of the crate lives here. Every native object is owned by a guard
//! that destroys it on drop, results are copied into owned Rust values before the event that
//! holds them is destroyed, and every wait on the result queue is bounded.

#![allow(unsafe_code)]
#![warn(clippy::undocumented_unsafe_blocks)]

use std::ffi::{c_char, c_int, CStr, CString};
use std::fmt;
use std::time::{Duration, Instant};

use rdkafka::client::{Client, ClientContext};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka_sys::bindings as rd;
use rdkafka_sys::types::RDKafkaRespErr;

use crate::error::{Error, Result};

/// The kind of group: `classic` (JoinGroup/SyncGroup) or `consumer` (KIP-848 heartbeats).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GroupType {
    /// Rebalanced by the client through JoinGroup/SyncGroup.
    Classic,
    /// Rebalanced by the broker through ConsumerGroupHeartbeat (KIP-848).
    Consumer,
    /// A share group (KIP-932): members share partitions record by record.
    Share,
    /// The broker did not say (ListGroups before v5).
    #[value(skip)]
    Unknown,
}

impl GroupType {
    /// The lower-case name Kafka's tools print.
    pub fn as_str(self) -> &'static str {
        match self {
            GroupType::Classic => "classic",
            GroupType::Consumer => "consumer",
            GroupType::Share => "share",
            GroupType::Unknown => "unknown",
        }
    }

    fn from_raw(raw: c_int) -> GroupType {
        match raw {
            1 => GroupType::Consumer,
            2 => GroupType::Classic,
            _ => GroupType::Unknown,
        }
    }

    fn to_native(self) -> Option<rd::rd_kafka_consumer_group_type_t> {
        use rd::rd_kafka_consumer_group_type_t as T;
        match self {
            GroupType::Classic => Some(T::RD_KAFKA_CONSUMER_GROUP_TYPE_CLASSIC),
            GroupType::Consumer => Some(T::RD_KAFKA_CONSUMER_GROUP_TYPE_CONSUMER),
            GroupType::Share | GroupType::Unknown => None,
        }
    }
}

impl fmt::Display for GroupType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// librdkafka's name of a `rd_kafka_consumer_group_state_t`, spelled as brokers do.
/// librdkafka 2.10 knows no consumer-group states besides the classic ones: a KIP-848 group
/// that is `Assigning` or `Reconciling` comes back as `Unknown`.
fn state_name(raw: c_int) -> &'static str {
    match raw {
        1 => "PreparingRebalance",
        2 => "CompletingRebalance",
        3 => "Stable",
        4 => "Dead",
        5 => "Empty",
        _ => "Unknown",
    }
}

/// One group as ListConsumerGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    /// The group id.
    pub id: String,
    /// Classic or consumer (unknown from brokers without ListGroups v5).
    pub group_type: GroupType,
    /// The group state (`Unknown` from brokers without ListGroups v4).
    pub state: String,
    /// A group with an empty protocol type: it only commits offsets, it never joined.
    pub simple: bool,
}

/// What ListConsumerGroups found: the groups, and the errors of the brokers that failed.
#[derive(Debug, Clone, Default)]
pub struct Listed {
    /// The groups listed by the brokers that answered.
    pub groups: Vec<GroupListing>,
    /// One error per broker that failed to answer.
    pub errors: Vec<CallError>,
}

/// One member of a described group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDescription {
    /// The member id the coordinator gave (or, for consumer groups, the client chose).
    pub member_id: String,
    /// `group.instance.id` of a static member.
    pub instance_id: Option<String>,
    /// The member's `client.id`.
    pub client_id: String,
    /// The host the member connects from.
    pub host: String,
    /// The partitions the member owns, as (topic, partition).
    pub assignment: Vec<(String, i32)>,
    /// The partitions the coordinator wants it to own (consumer groups only).
    pub target_assignment: Option<Vec<(String, i32)>>,
}

/// The coordinator that described a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coordinator {
    /// Broker id.
    pub id: i32,
    /// Host name as the client knows it.
    pub host: String,
    /// Port.
    pub port: u16,
}

/// One group as DescribeConsumerGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    /// The group id.
    pub id: String,
    /// Classic or consumer.
    pub group_type: GroupType,
    /// The group state.
    pub state: String,
    /// A group with an empty protocol type.
    pub simple: bool,
    /// The partition assignor: the classic group's protocol, or the consumer group's
    /// server-side assignor.
    pub assignor: String,
    /// The coordinator that answered.
    pub coordinator: Option<Coordinator>,
    /// The members.
    pub members: Vec<MemberDescription>,
}

/// Why one broker could not list, or one group could not be described.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallError {
    /// The error code (broker codes positive, librdkafka's own negative).
    pub raw: i32,
    /// librdkafka's description.
    pub message: String,
}

impl CallError {
    /// The code as librdkafka names it, if it is one librdkafka knows.
    pub fn code(&self) -> Option<RDKafkaErrorCode> {
        known_code(self.raw)
    }

    /// The error as trib reports it.
    pub fn into_error(self, action: impl Into<String>) -> Error {
        code_error(action.into(), self.raw, &self.message)
    }
}

/// Lists the groups of the cluster (of the given types; every type when `types` is empty),
/// waiting at most `timeout` (plus a second for the result to arrive).
pub fn list_groups<C: ClientContext>(
    client: &Client<C>,
    types: &[GroupType],
    timeout: Duration,
) -> Result<Listed> {
    const ACTION: &str = "list consumer groups";
    let rk = client.native_ptr();
    let options = AdminOptions::new(
        rk,
        rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPS,
        timeout,
        ACTION,
    )?;
    let native: Vec<_> = types.iter().filter_map(|t| t.to_native()).collect();
    if !native.is_empty() {
        options.match_types(&native, ACTION)?;
    }
    let queue = Queue::new(rk, ACTION)?;
    // SAFETY: `rk` is the live handle `client` borrows for this whole call; `options` and
    // `queue` are live objects of that handle. librdkafka copies the options into the request
    // and keeps its own reference to the queue, so both may be destroyed when we return, even
    // if the request is still running.
    unsafe { rd::rd_kafka_ListConsumerGroups(rk, options.0, queue.0) };
    let event = queue.wait(
        rd::RD_KAFKA_EVENT_LISTCONSUMERGROUPS_RESULT,
        timeout,
        ACTION,
    )?;
    event.check(ACTION)?;
    // SAFETY: the event is a ListConsumerGroups result (its type was checked in `wait`).
    let result = unsafe { rd::rd_kafka_event_ListConsumerGroups_result(event.0) };
    if result.is_null() {
        return Err(unexpected(ACTION, "no result in the result event"));
    }
    let mut listed = Listed::default();
    let mut count = 0usize;
    // SAFETY: `result` is valid while `event` lives; the array has `count` elements.
    let valid = unsafe { rd::rd_kafka_ListConsumerGroups_result_valid(result, &mut count) };
    // SAFETY: `valid` holds `count` listings owned by `result`, used while `event` lives.
    for listing in unsafe { raw_slice(valid, count) } {
        // SAFETY: each element is a listing owned by `result`, read before `event` is dropped.
        let listing = unsafe { copy_listing(*listing) };
        listed.groups.push(listing);
    }
    // SAFETY: as above, for the per-broker errors.
    let errors = unsafe { rd::rd_kafka_ListConsumerGroups_result_errors(result, &mut count) };
    // SAFETY: `errors` holds `count` errors owned by `result`, used while `event` lives.
    for error in unsafe { raw_slice(errors, count) } {
        // SAFETY: each element is an error owned by `result`.
        let (raw, message) = unsafe { error_parts(*error) };
        listed.errors.push(CallError { raw, message });
    }
    Ok(listed)
}

/// Describes `groups`, in order: each one's description, or why it could not be described.
/// A group the coordinator does not know is described as `Dead` (or fails with
/// GROUP_ID_NOT_FOUND), as Kafka does.
pub fn describe_groups<C: ClientContext>(
    client: &Client<C>,
    groups: &[String],
    timeout: Duration,
) -> Result<Vec<(String, std::result::Result<GroupDescription, CallError>)>> {
    const ACTION: &str = "describe consumer groups";
    if groups.is_empty() {
        return Ok(Vec::new());
    }
    // librdkafka refuses duplicates: describe each id once, answer in the order asked.
    let mut unique: Vec<&String> = Vec::new();
    for g in groups {
        if !unique.contains(&g) {
            unique.push(g);
        }
    }
    let names: Vec<CString> = unique
        .iter()
        .map(|g| CString::new(g.as_str()))
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| Error::Usage("a group id cannot contain a NUL character".into()))?;
    let mut pointers: Vec<*const c_char> = names.iter().map(|n| n.as_ptr()).collect();
    let rk = client.native_ptr();
    let options = AdminOptions::new(
        rk,
        rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DESCRIBECONSUMERGROUPS,
        timeout,
        ACTION,
    )?;
    let queue = Queue::new(rk, ACTION)?;
    // SAFETY: as in `list_groups`; `pointers` holds `pointers.len()` NUL-terminated strings
    // owned by `names`, which outlives the call, and librdkafka copies them.
    unsafe {
        rd::rd_kafka_DescribeConsumerGroups(
            rk,
            pointers.as_mut_ptr(),
            pointers.len(),
            options.0,
            queue.0,
        )
    };
    let event = queue.wait(
        rd::RD_KAFKA_EVENT_DESCRIBECONSUMERGROUPS_RESULT,
        timeout,
        ACTION,
    )?;
    event.check(ACTION)?;
    // SAFETY: the event is a DescribeConsumerGroups result (its type was checked in `wait`).
    let result = unsafe { rd::rd_kafka_event_DescribeConsumerGroups_result(event.0) };
    if result.is_null() {
        return Err(unexpected(ACTION, "no result in the result event"));
    }
    let mut count = 0usize;
    // SAFETY: `result` is valid while `event` lives; the array has `count` elements.
    let descs = unsafe { rd::rd_kafka_DescribeConsumerGroups_result_groups(result, &mut count) };
    let mut found = Vec::with_capacity(count);
    // SAFETY: `descs` holds `count` descriptions owned by `result`, used while `event` lives.
    for desc in unsafe { raw_slice(descs, count) } {
        // SAFETY: each element is a description owned by `result`, read before `event` drops.
        found.push(unsafe { copy_description(*desc) });
    }
    Ok(groups
        .iter()
        .map(|g| {
            let answer = found
                .iter()
                .find(|(id, _)| id == g)
                .map(|(_, r)| r.clone())
                .unwrap_or_else(|| {
                    Err(CallError {
                        raw: RDKafkaErrorCode::Fail as i32,
                        message: "librdkafka returned no result for the group".into(),
                    })
                });
            (g.clone(), answer)
        })
        .collect())
}

/// Functions whose C return type is an enum, declared here returning `int`: the bindings make
/// them Rust enums, and a code librdkafka does not list (a broker's newer error code, carried
/// through unchanged) would be an invalid enum value, which is undefined behavior in Rust.
mod raw {
    use std::ffi::c_int;

    use rdkafka_sys::bindings as rd;

    extern "C" {
        pub(super) fn rd_kafka_event_error(rkev: *mut rd::rd_kafka_event_t) -> c_int;
        pub(super) fn rd_kafka_error_code(error: *const rd::rd_kafka_error_t) -> c_int;
        pub(super) fn rd_kafka_ConsumerGroupListing_state(
            grplist: *const rd::rd_kafka_ConsumerGroupListing_t,
        ) -> c_int;
        pub(super) fn rd_kafka_ConsumerGroupListing_type(
            grplist: *const rd::rd_kafka_ConsumerGroupListing_t,
        ) -> c_int;
        pub(super) fn rd_kafka_ConsumerGroupDescription_state(
            grpdesc: *const rd::rd_kafka_ConsumerGroupDescription_t,
        ) -> c_int;
        pub(super) fn rd_kafka_ConsumerGroupDescription_type(
            grpdesc: *const rd::rd_kafka_ConsumerGroupDescription_t,
        ) -> c_int;
    }
}

/// Owns a `rd_kafka_AdminOptions_t`.
struct AdminOptions(*mut rd::rd_kafka_AdminOptions_t);

impl AdminOptions {
    fn new(
        rk: *mut rd::rd_kafka_t,
        api: rd::rd_kafka_admin_op_t,
        timeout: Duration,
        action: &str,
    ) -> Result<AdminOptions> {
        // SAFETY: `rk` is a live client handle (see the callers); `api` is a valid enum value.
        let ptr = unsafe { rd::rd_kafka_AdminOptions_new(rk, api) };
        if ptr.is_null() {
            return Err(unexpected(action, "librdkafka refused the admin options"));
        }
        let options = AdminOptions(ptr);
        let ms = c_int::try_from(timeout.as_millis().clamp(1, 3_600_000)).unwrap_or(c_int::MAX);
        let mut errstr = [0 as c_char; 512];
        // SAFETY: `options` is live; `errstr` is a writable buffer of the size passed.
        let err = unsafe {
            rd::rd_kafka_AdminOptions_set_request_timeout(
                options.0,
                ms,
                errstr.as_mut_ptr(),
                errstr.len(),
            )
        };
        if err != RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR {
            // SAFETY: librdkafka NUL-terminates what it writes into `errstr`, which was zeroed.
            let why = unsafe { CStr::from_ptr(errstr.as_ptr()) }.to_string_lossy();
            return Err(unexpected(
                action,
                &format!("request timeout refused: {why}"),
            ));
        }
        Ok(options)
    }

    fn match_types(
        &self,
        types: &[rd::rd_kafka_consumer_group_type_t],
        action: &str,
    ) -> Result<()> {
        // SAFETY: `self` is live; `types` points to `types.len()` valid enum values, which
        // librdkafka copies.
        let error = unsafe {
            rd::rd_kafka_AdminOptions_set_match_consumer_group_types(
                self.0,
                types.as_ptr(),
                types.len(),
            )
        };
        if error.is_null() {
            return Ok(());
        }
        // SAFETY: a non-null error returned to us is ours to read and destroy, once.
        let (raw, message) = unsafe { error_parts(error) };
        // SAFETY: as above; not used after this.
        unsafe { rd::rd_kafka_error_destroy(error) };
        Err(code_error(format!("{action} by type"), raw, &message))
    }
}

impl Drop for AdminOptions {
    fn drop(&mut self) {
        // SAFETY: the pointer came from rd_kafka_AdminOptions_new and is destroyed only here.
        unsafe { rd::rd_kafka_AdminOptions_destroy(self.0) }
    }
}

/// Owns a `rd_kafka_queue_t` that receives one admin result.
struct Queue(*mut rd::rd_kafka_queue_t);

impl Queue {
    fn new(rk: *mut rd::rd_kafka_t, action: &str) -> Result<Queue> {
        // SAFETY: `rk` is a live client handle (see the callers).
        let ptr = unsafe { rd::rd_kafka_queue_new(rk) };
        if ptr.is_null() {
            return Err(unexpected(action, "librdkafka could not create a queue"));
        }
        Ok(Queue(ptr))
    }

    /// Waits for the event of type `wanted`: at most `timeout` plus a second, since the
    /// request itself times out after `timeout` and then reports that as its result.
    fn wait(&self, wanted: c_int, timeout: Duration, action: &str) -> Result<Event> {
        let deadline = Instant::now() + timeout + Duration::from_secs(1);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::Timeout {
                    action: action.to_string(),
                    timeout,
                });
            }
            let ms = c_int::try_from(left.as_millis().max(1)).unwrap_or(c_int::MAX);
            // SAFETY: `self` is a live queue; the returned event, if any, is ours to destroy.
            let ptr = unsafe { rd::rd_kafka_queue_poll(self.0, ms) };
            if ptr.is_null() {
                continue;
            }
            let event = Event(ptr);
            // SAFETY: `event` is live.
            if unsafe { rd::rd_kafka_event_type(event.0) } == wanted {
                return Ok(event);
            }
            // Anything else (nothing else is expected on a queue of our own) is dropped.
        }
    }
}

impl Drop for Queue {
    fn drop(&mut self) {
        // SAFETY: the pointer came from rd_kafka_queue_new and is destroyed only here, before
        // the client handle (which the callers borrow for longer). librdkafka keeps the queue
        // alive for a request still in flight and discards its result.
        unsafe { rd::rd_kafka_queue_destroy(self.0) }
    }
}

/// Owns a `rd_kafka_event_t`; everything read from it is copied before it is dropped.
struct Event(*mut rd::rd_kafka_event_t);

impl Event {
    /// The request-level error of the event, if any.
    fn check(&self, action: &str) -> Result<()> {
        // SAFETY: `self` is live.
        let raw = unsafe { raw::rd_kafka_event_error(self.0) };
        if raw == 0 {
            return Ok(());
        }
        // SAFETY: `self` is live; the string (possibly null) lives as long as the event.
        let message = unsafe { owned(rd::rd_kafka_event_error_string(self.0)) };
        Err(code_error(action.to_string(), raw, &message))
    }
}

impl Drop for Event {
    fn drop(&mut self) {
        // SAFETY: the pointer came from rd_kafka_queue_poll and is destroyed only here.
        unsafe { rd::rd_kafka_event_destroy(self.0) }
    }
}

/// Copies a C string (null gives the empty string).
///
/// # Safety
/// `ptr` is null or a valid NUL-terminated string.
unsafe fn owned(ptr: *const c_char) -> String {
    if ptr.is_null() {
        String::new()
    } else {
        // SAFETY: guaranteed by the caller.
        unsafe { CStr::from_ptr(ptr) }
            .to_string_lossy()
            .into_owned()
    }
}

/// The `count` elements at `ptr` (none when null).
///
/// # Safety
/// `ptr` is null or points to `count` pointers that stay valid for `'a`: librdkafka's result
/// accessors return such arrays, valid as long as their result event, and the callers use
/// the slice only while that event lives.
unsafe fn raw_slice<'a, T>(ptr: *mut *const T, count: usize) -> &'a [*const T] {
    if ptr.is_null() || count == 0 {
        return &[];
    }
    // SAFETY: guaranteed by the caller.
    unsafe { std::slice::from_raw_parts(ptr.cast_const(), count) }
}

/// The code and message of a `rd_kafka_error_t`.
///
/// # Safety
/// `error` is a valid error object.
unsafe fn error_parts(error: *const rd::rd_kafka_error_t) -> (i32, String) {
    // SAFETY: guaranteed by the caller; the string lives as long as the error.
    unsafe {
        (
            raw::rd_kafka_error_code(error),
            owned(rd::rd_kafka_error_string(error)),
        )
    }
}

/// # Safety
/// `listing` is a valid listing.
unsafe fn copy_listing(listing: *const rd::rd_kafka_ConsumerGroupListing_t) -> GroupListing {
    // SAFETY: guaranteed by the caller; strings are copied while the listing lives.
    unsafe {
        GroupListing {
            id: owned(rd::rd_kafka_ConsumerGroupListing_group_id(listing)),
            group_type: GroupType::from_raw(raw::rd_kafka_ConsumerGroupListing_type(listing)),
            state: state_name(raw::rd_kafka_ConsumerGroupListing_state(listing)).to_string(),
            simple: rd::rd_kafka_ConsumerGroupListing_is_simple_consumer_group(listing) != 0,
        }
    }
}

/// # Safety
/// `desc` is a valid group description.
unsafe fn copy_description(
    desc: *const rd::rd_kafka_ConsumerGroupDescription_t,
) -> (String, std::result::Result<GroupDescription, CallError>) {
    // SAFETY: guaranteed by the caller; every pointer read below is owned by `desc` and
    // copied before returning.
    unsafe {
        let id = owned(rd::rd_kafka_ConsumerGroupDescription_group_id(desc));
        let error = rd::rd_kafka_ConsumerGroupDescription_error(desc);
        if !error.is_null() {
            let (raw, message) = error_parts(error);
            return (id, Err(CallError { raw, message }));
        }
        let node = rd::rd_kafka_ConsumerGroupDescription_coordinator(desc);
        let coordinator = (!node.is_null()).then(|| Coordinator {
            id: rd::rd_kafka_Node_id(node),
            host: owned(rd::rd_kafka_Node_host(node)),
            port: rd::rd_kafka_Node_port(node),
        });
        let count = rd::rd_kafka_ConsumerGroupDescription_member_count(desc);
        let members = (0..count)
            .map(|i| rd::rd_kafka_ConsumerGroupDescription_member(desc, i))
            .filter(|m| !m.is_null())
            .map(|m| copy_member(m))
            .collect();
        let description = GroupDescription {
            id: id.clone(),
            group_type: GroupType::from_raw(raw::rd_kafka_ConsumerGroupDescription_type(desc)),
            state: state_name(raw::rd_kafka_ConsumerGroupDescription_state(desc)).to_string(),
            simple: rd::rd_kafka_ConsumerGroupDescription_is_simple_consumer_group(desc) != 0,
            assignor: owned(rd::rd_kafka_ConsumerGroupDescription_partition_assignor(
                desc,
            )),
            coordinator,
            members,
        };
        (id, Ok(description))
    }
}

/// # Safety
/// `member` is a valid member description.
unsafe fn copy_member(member: *const rd::rd_kafka_MemberDescription_t) -> MemberDescription {
    // SAFETY: guaranteed by the caller; everything is copied while the member lives.
    unsafe {
        let instance = rd::rd_kafka_MemberDescription_group_instance_id(member);
        let target = rd::rd_kafka_MemberDescription_target_assignment(member);
        MemberDescription {
            member_id: owned(rd::rd_kafka_MemberDescription_consumer_id(member)),
            instance_id: (!instance.is_null()).then(|| owned(instance)),
            client_id: owned(rd::rd_kafka_MemberDescription_client_id(member)),
            host: owned(rd::rd_kafka_MemberDescription_host(member)),
            assignment: copy_assignment(rd::rd_kafka_MemberDescription_assignment(member)),
            target_assignment: (!target.is_null()).then(|| copy_assignment(target)),
        }
    }
}

/// The (topic, partition) pairs of an assignment (none when null).
///
/// # Safety
/// `assignment` is null or a valid member assignment.
unsafe fn copy_assignment(
    assignment: *const rd::rd_kafka_MemberAssignment_t,
) -> Vec<(String, i32)> {
    if assignment.is_null() {
        return Vec::new();
    }
    // SAFETY: guaranteed by the caller.
    let list = unsafe { rd::rd_kafka_MemberAssignment_partitions(assignment) };
    if list.is_null() {
        return Vec::new();
    }
    // SAFETY: `list` is a valid partition list owned by the assignment: `elems` holds `cnt`
    // elements. Only the `topic` and `partition` fields are read, through the raw pointer,
    // so no Rust value of the element (whose `err` field is an enum) is ever made.
    unsafe {
        let count = usize::try_from((*list).cnt).unwrap_or(0);
        let elems = (*list).elems;
        if elems.is_null() {
            return Vec::new();
        }
        (0..count)
            .map(|i| {
                let elem = elems.add(i);
                (owned((*elem).topic), (*elem).partition)
            })
            .collect()
    }
}

/// The `RDKafkaErrorCode` of a raw code, if librdkafka knows it.
fn known_code(raw: i32) -> Option<RDKafkaErrorCode> {
    RDKafkaRespErr::try_from(raw)
        .ok()
        .map(RDKafkaErrorCode::from)
}

/// trib's error for a raw code: the usual one for codes librdkafka knows, else a broker
/// error that names the number and librdkafka's message.
fn code_error(action: String, raw: i32, message: &str) -> Error {
    match known_code(raw) {
        Some(code) => Error::code(action, code),
        None => Error::Broker {
            action: format!("{action} ({message}, error code {raw})"),
            code: RDKafkaErrorCode::Unknown,
            hint: None,
        },
    }
}

fn unexpected(action: &str, why: &str) -> Error {
    Error::Broker {
        action: format!("{action} ({why})"),
        code: RDKafkaErrorCode::Fail,
        hint: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_types_and_states_map_to_names() {
        assert_eq!(GroupType::from_raw(1), GroupType::Consumer);
        assert_eq!(GroupType::from_raw(2), GroupType::Classic);
        assert_eq!(GroupType::from_raw(0), GroupType::Unknown);
        assert_eq!(GroupType::from_raw(77), GroupType::Unknown);
        assert_eq!(state_name(3), "Stable");
        assert_eq!(state_name(5), "Empty");
        assert_eq!(state_name(-1), "Unknown");
        assert_eq!(GroupType::Classic.to_string(), "classic");
        assert!(GroupType::Unknown.to_native().is_none());
    }

    #[test]
    fn unknown_error_codes_are_reported_by_number() {
        assert_eq!(known_code(69), Some(RDKafkaErrorCode::GroupIdNotFound));
        assert_eq!(known_code(10_000), None);
        let e = code_error("describe group 'g'".into(), 10_000, "Broker: something new");
        assert!(e.to_string().contains("error code 10000"), "{e}");
        assert!(e.to_string().contains("something new"), "{e}");
    }

    #[test]
    fn calls_against_no_broker_time_out_within_the_bound() {
        use rdkafka::config::ClientConfig;
        use rdkafka::consumer::{BaseConsumer, Consumer};
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", "127.0.0.1:1")
            .set("log_level", "0")
            .create()
            .expect("a client");
        let timeout = Duration::from_millis(300);
        let start = Instant::now();
        match list_groups(consumer.client(), &[GroupType::Consumer], timeout) {
            Err(_) => {}
            Ok(l) => assert!(l.groups.is_empty() && !l.errors.is_empty(), "{l:?}"),
        }
        let d = describe_groups(consumer.client(), &["g".into(), "g".into()], timeout);
        match d {
            Err(_) => {}
            Ok(v) => {
                assert_eq!(v.len(), 2);
                assert!(v.iter().all(|(_, r)| r.is_err()), "{v:?}");
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{:?}",
            start.elapsed()
        );
        assert!(describe_groups(consumer.client(), &[], timeout)
            .expect("nothing to describe")
            .is_empty());
        assert!(matches!(
            describe_groups(consumer.client(), &["a\0b".into()], timeout),
            Err(Error::Usage(_))
        ));
    }
}
