//! Capture mode: a recording TCP proxy in front of a fresh broker (which advertises the proxy,
//! so clients stay on it), a driver script that runs the real clients through it, and the
//! frames they sent, reduced to a few distinct exemplars per (API, version, client) and
//! written as a corpus file.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::broker::{Broker, SpawnOptions};
use crate::checks::tool::wait_with_timeout;
use crate::corpus::{Corpus, Entry};
use crate::{wire, Error, Result};

/// Largest request frame the proxy forwards (it is a test proxy, not a broker).
const MAX_FRAME: usize = 64 << 20;

/// How to capture.
#[derive(Debug, Clone)]
pub struct Options {
    /// The broker binary.
    pub binary: PathBuf,
    /// Scratch directory for the broker.
    pub workdir: PathBuf,
    /// The driver script (runs the clients against `--bootstrap`).
    pub driver: PathBuf,
    /// The Python interpreter for it.
    pub python: String,
    /// Corpus file to write.
    pub out: PathBuf,
    /// Distinct frames kept per (API, version, client).
    pub per_kind: usize,
    /// Frames larger than this are not kept (the corpus stays small).
    pub max_frame_bytes: usize,
    /// How long the driver may run.
    pub driver_timeout: Duration,
}

/// A captured frame, as the proxy saw it.
type Frames = Arc<Mutex<Vec<Vec<u8>>>>;

/// Runs the capture and writes the corpus; returns it.
pub fn capture(opts: &Options) -> Result<Corpus> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(Error::io("binding the proxy"))?;
    let proxy = listener
        .local_addr()
        .map_err(Error::io("reading the proxy address"))?
        .to_string();
    let mut broker = Broker::spawn(&SpawnOptions {
        binary: opts.binary.clone(),
        workdir: opts.workdir.clone(),
        advertised: Some(proxy.clone()),
        extra_args: Vec::new(),
    })?;
    let frames: Frames = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    listener
        .set_nonblocking(true)
        .map_err(Error::io("configuring the proxy"))?;
    let accept = {
        let (frames, stop, upstream) = (frames.clone(), stop.clone(), broker.bootstrap.clone());
        std::thread::spawn(move || accept_loop(listener, &upstream, &frames, &stop))
    };
    let topics_file = opts.workdir.join("topics.txt");
    let child = Command::new(&opts.python)
        .arg(&opts.driver)
        .args(["--bootstrap", &proxy, "--topics-out"])
        .arg(&topics_file)
        .spawn()
        .map_err(Error::io(format!("starting {}", opts.driver.display())))?;
    let driven = wait_with_timeout(child, opts.driver_timeout);
    stop.store(true, Ordering::Relaxed);
    let _ = accept.join();
    broker.stop();
    match driven {
        Ok(o) if o.status.success() => {}
        Ok(o) => {
            return Err(Error::Setup(format!(
                "the capture driver exited with {}",
                o.status
            )))
        }
        Err(e) => return Err(Error::Setup(format!("the capture driver: {e}"))),
    }
    let topics_text = std::fs::read_to_string(&topics_file)
        .map_err(Error::io(format!("reading {}", topics_file.display())))?;
    let mut corpus = Corpus::parse(&topics_text, &topics_file.display().to_string())?;
    let captured = std::mem::take(&mut *frames.lock().unwrap_or_else(|e| e.into_inner()));
    corpus.frames = reduce(&captured, opts.per_kind, opts.max_frame_bytes)?;
    std::fs::write(&opts.out, corpus.format())
        .map_err(Error::io(format!("writing {}", opts.out.display())))?;
    Ok(corpus)
}

fn accept_loop(listener: TcpListener, upstream: &str, frames: &Frames, stop: &AtomicBool) {
    let mut handlers = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((client, _)) => {
                let (frames, upstream) = (frames.clone(), upstream.to_string());
                handlers.push(std::thread::spawn(move || {
                    relay(client, &upstream, &frames)
                }));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    drop(handlers); // connections end when the driver's clients close them
}

/// Forwards one client connection, recording each request frame.
fn relay(client: TcpStream, upstream: &str, frames: &Frames) {
    let Ok(server) = TcpStream::connect(upstream) else {
        return;
    };
    let _ = client.set_nonblocking(false);
    let (Ok(mut client_r), Ok(mut server_w), Ok(mut server_r), Ok(mut client_w)) = (
        client.try_clone(),
        server.try_clone(),
        server.try_clone(),
        client.try_clone(),
    ) else {
        return;
    };
    let back = std::thread::spawn(move || {
        let _ = std::io::copy(&mut server_r, &mut client_w);
        let _ = client_w.shutdown(Shutdown::Both);
    });
    loop {
        let mut size = [0u8; 4];
        if client_r.read_exact(&mut size).is_err() {
            break;
        }
        let Some(len) = usize::try_from(i32::from_be_bytes(size))
            .ok()
            .filter(|&l| l <= MAX_FRAME)
        else {
            break;
        };
        let mut frame = size.to_vec();
        frame.resize(4 + len, 0);
        if client_r.read_exact(&mut frame[4..]).is_err() || server_w.write_all(&frame).is_err() {
            break;
        }
        frames.lock().unwrap_or_else(|e| e.into_inner()).push(frame);
    }
    let _ = server.shutdown(Shutdown::Both);
    let _ = back.join();
}

/// Which client sent a frame, from the client id the driver gave each client.
pub fn source_of(client_id: &str) -> &'static str {
    const SOURCES: [(&str, &str); 4] = [
        ("fz-kcat", "kcat"),
        ("fz-confluent", "confluent-kafka"),
        ("fz-kafka-python", "kafka-python"),
        ("fz-java", "java"),
    ];
    SOURCES
        .iter()
        .find(|(prefix, _)| client_id.starts_with(prefix))
        .map_or("other", |(_, s)| s)
}

/// (API key, version, source client): what the corpus keeps a few exemplars of.
type Kind<'a> = (i16, i16, &'a str);

/// Keeps the `per_kind` smallest distinct frames per (API, version, source), correlation ids
/// zeroed; refuses a frame that names this machine (its host name or a scratch path).
pub fn reduce(frames: &[Vec<u8>], per_kind: usize, max_bytes: usize) -> Result<Vec<Entry>> {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let host = host.trim();
    let mut kept: BTreeMap<Kind<'_>, BTreeSet<(usize, Vec<u8>)>> = BTreeMap::new();
    for frame in frames {
        if frame.len() > max_bytes {
            continue;
        }
        let Some(split) = wire::split(frame) else {
            continue;
        };
        let source = source_of(split.header.client_id.as_deref().unwrap_or(""));
        let mut frame = frame.clone();
        wire::set_correlation_id(&mut frame, 0);
        let text = String::from_utf8_lossy(&frame);
        if (host.len() > 3 && text.contains(host))
            || ["/tmp/", "/work/", "/root/", "/home/"]
                .iter()
                .any(|p| text.contains(p))
        {
            return Err(Error::Setup(format!(
                "a captured {:?} frame names this machine (host name or a local path); change the driver",
                split.api
            )));
        }
        let set = kept
            .entry((split.api as i16, split.header.request_api_version, source))
            .or_default();
        set.insert((frame.len(), frame));
        while set.len() > per_kind {
            set.pop_last();
        }
    }
    Ok(kept
        .into_iter()
        .flat_map(|((api, version, source), set)| {
            set.into_iter().map(move |(_, frame)| Entry {
                api_key: api,
                api_version: version,
                source: source.to_string(),
                frame,
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::{ApiKey, MetadataRequest, RequestKind};

    #[test]
    fn frames_are_reduced_to_the_smallest_distinct_per_kind_with_zeroed_correlation_ids() {
        let mk = |id: i32, client: &str, topics: usize| {
            let topics = (0..topics)
                .map(|i| {
                    kafka_protocol::messages::metadata_request::MetadataRequestTopic::default()
                        .with_name(Some(kafka_protocol::messages::TopicName(
                            format!("t{i}").into(),
                        )))
                })
                .collect();
            let r = RequestKind::Metadata(MetadataRequest::default().with_topics(Some(topics)));
            wire::encode_request(ApiKey::Metadata, 12, id, client, &r).unwrap()
        };
        let frames = vec![
            mk(1, "fz-kcat", 1),
            mk(2, "fz-kcat", 1),
            mk(3, "fz-kcat", 3),
            mk(4, "fz-kcat", 2),
            mk(5, "fz-java-admin", 1),
        ];
        let kept = reduce(&frames, 2, 1 << 20).unwrap();
        let kcat: Vec<&Entry> = kept.iter().filter(|e| e.source == "kcat").collect();
        assert_eq!(kcat.len(), 2, "duplicates collapse, the largest is dropped");
        assert!(kcat
            .iter()
            .all(|e| wire::prefix(&e.frame).unwrap().correlation_id == 0));
        assert_eq!(kept.iter().filter(|e| e.source == "java").count(), 1);
    }

    #[test]
    fn sources_come_from_the_driver_client_ids() {
        assert_eq!(source_of("fz-kafka-python-1"), "kafka-python");
        assert_eq!(source_of("fz-confluent-producer"), "confluent-kafka");
        assert_eq!(source_of("rdkafka"), "other");
    }
}
