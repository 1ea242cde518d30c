"""TLS listeners and SASL authentication with real clients: confluent-kafka (librdkafka),
kafka-python, kcat and the Java client over SSL, mutual TLS, SASL_SSL with SCRAM, SASL_PLAINTEXT
with PLAIN and OAUTHBEARER; refusals of bad credentials, untrusted certificates, plaintext on a
TLS port and garbage in the handshake while other clients carry on; certificate rotation;
re-authentication (KIP-368) and the limits on unauthenticated connections."""

from __future__ import annotations

import json
import socket
import ssl
import struct
import time
from pathlib import Path
from typing import Optional

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (AdminClient, ScramCredentialInfo, ScramMechanism,
                                   UserScramCredentialUpsertion)
from cryptography import x509
from kafka import KafkaConsumer, KafkaProducer
from kafka.net.sasl.oauth import AbstractTokenProvider

from harness import BrokerProcess, free_port, metric_sum, wait_until
from kafkawire import Connection, api_versions_request, frame, int16, int32, request_header, string
from pyclients import ck_create_topic, kcat
from secmaterial import CLIENT_SUBJECT, PLAIN_USERS, Ports, TokenIssuer, free_ports, make_pki, secure_config

pytestmark = [
    pytest.mark.peer_gap("the peer broker serves no TLS or SASL listeners"),
    pytest.mark.single_broker("listeners, keystores and SASL mechanisms from one broker's properties file and "
                              "restarts; a cluster's come from KafkaCluster.spec (listeners, tls, "
                              "authentication) and KafkaUsers, run with real clients by the e2e scenario "
                              "`security`"),
]

SCRAM_PASSWORD = "alice-scram-pw"


class Secure:
    """A broker with a listener of each security protocol, and the material to reach it."""

    def __init__(self, broker: BrokerProcess, ports: Ports, pki, issuer: TokenIssuer) -> None:
        self.broker, self.ports, self.pki, self.issuer = broker, ports, pki, issuer

    def addr(self, port: int) -> str:
        return f"127.0.0.1:{port}"

    @property
    def plaintext(self) -> str:
        return self.addr(self.ports.plaintext)

    def ck(self, listener: str, **extra: object) -> dict:
        """librdkafka settings for `listener` (ssl, mtls, scram256, scram512, plain, oauth)."""
        p, ca = self.ports, str(self.pki.ca)
        base = {
            "ssl": {"bootstrap.servers": self.addr(p.ssl), "security.protocol": "SSL", "ssl.ca.location": ca},
            "mtls": {"bootstrap.servers": self.addr(p.mtls), "security.protocol": "SSL", "ssl.ca.location": ca,
                     "ssl.certificate.location": str(self.pki.client_cert),
                     "ssl.key.location": str(self.pki.client_key)},
            "scram256": {"bootstrap.servers": self.addr(p.sasl_ssl), "security.protocol": "SASL_SSL",
                         "ssl.ca.location": ca, "sasl.mechanisms": "SCRAM-SHA-256",
                         "sasl.username": "alice", "sasl.password": SCRAM_PASSWORD},
            "scram512": {"bootstrap.servers": self.addr(p.sasl_ssl), "security.protocol": "SASL_SSL",
                         "ssl.ca.location": ca, "sasl.mechanisms": "SCRAM-SHA-512",
                         "sasl.username": "alice", "sasl.password": SCRAM_PASSWORD},
            "plain": {"bootstrap.servers": self.addr(p.sasl_plaintext), "security.protocol": "SASL_PLAINTEXT",
                      "sasl.mechanisms": "PLAIN", "sasl.username": "alice",
                      "sasl.password": PLAIN_USERS["alice"]},
            "oauth": {"bootstrap.servers": self.addr(p.sasl_plaintext), "security.protocol": "SASL_PLAINTEXT",
                      "sasl.mechanisms": "OAUTHBEARER",
                      "oauth_cb": lambda _: (self.issuer.token(), time.time() + 300)},
        }[listener]
        return {**base, **extra}


def start_secure_broker(workdir: Path, extra: Optional[dict] = None) -> Secure:
    pki = make_pki(workdir / "pki")
    issuer = TokenIssuer(workdir / "pki")
    ports = free_ports(free_port())
    config = secure_config(workdir / "broker.yaml", pki, issuer, ports, extra)
    broker = BrokerProcess("tributary", workdir / "broker", settings={"config": config}, port=ports.plaintext)
    broker.start()
    return Secure(broker, ports, pki, issuer)


@pytest.fixture(scope="module")
def secure(tmp_path_factory):
    s = start_secure_broker(tmp_path_factory.mktemp("secure"))
    # SCRAM credentials through AlterUserScramCredentials, as an administrator creates them.
    admin = AdminClient({"bootstrap.servers": s.plaintext})
    upserts = [UserScramCredentialUpsertion("alice", ScramCredentialInfo(m, 8192), SCRAM_PASSWORD.encode())
               for m in (ScramMechanism.SCRAM_SHA_256, ScramMechanism.SCRAM_SHA_512)]
    for future in admin.alter_user_scram_credentials(upserts).values():
        future.result(10)
    yield s
    s.broker.stop()


def produce(conf: dict, topic: str, count: int = 20, prefix: str = "v") -> list:
    errors: list = []
    producer = Producer({"message.timeout.ms": 15000, **conf})
    for i in range(count):
        producer.produce(topic, value=f"{prefix}-{i}".encode(), on_delivery=lambda e, m: errors.append(e))
    assert producer.flush(20) == 0
    assert errors == [None] * count, errors[:3]
    return errors


def consume(conf: dict, topic: str, count: int) -> list[bytes]:
    consumer = Consumer({"group.id": "unused", "enable.auto.commit": False, **conf})
    consumer.assign([TopicPartition(topic, 0, 0)])
    out: list[bytes] = []
    deadline = time.monotonic() + 20
    try:
        while len(out) < count and time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is not None:
                assert msg.error() is None, msg.error()
                out.append(msg.value())
    finally:
        consumer.close()
    return out


def auth_error(conf: dict, expected: str, case: str) -> str:
    """The errors librdkafka reports for `conf`, once one of them says `expected` (fails with
    the errors seen if none does within 15 s)."""
    errors: list = []
    client = Producer({**conf, "error_cb": lambda e: errors.append(e), "reconnect.backoff.ms": 500})

    def reported() -> str:
        client.poll(0.1)
        text = " ".join(str(e) for e in errors)
        if expected not in text:
            raise AssertionError(f"errors so far: {text!r}")
        return text

    try:
        return wait_until(reported, 15, f"{case}: an error saying {expected!r}")
    finally:
        client.flush(0)


def test_confluent_kafka_over_ssl_sees_the_ssl_listeners_address(secure, topic):
    ck_create_topic(secure.plaintext, topic)
    produce(secure.ck("ssl"), topic)
    assert consume(secure.ck("ssl"), topic, 20) == [f"v-{i}".encode() for i in range(20)]
    # Metadata answers with the endpoints of the listener the request arrived on.
    md = Producer(secure.ck("ssl")).list_topics(timeout=10)
    assert [(b.host, b.port) for b in md.brokers.values()] == [("127.0.0.1", secure.ports.ssl)]
    md = Producer({"bootstrap.servers": secure.plaintext}).list_topics(timeout=10)
    assert [b.port for b in md.brokers.values()] == [secure.ports.plaintext]


def test_tls_consumers_get_record_sets_copied_and_plaintext_ones_sent_from_files(secure, topic):
    # Zero-copy (sendfile from the segment files) only where the bytes written are the bytes
    # sent: TLS encrypts them, so its connections keep the copy path (test_zero_copy.py).
    produce({"bootstrap.servers": secure.plaintext}, topic, 40)
    values = [f"v-{i}".encode() for i in range(40)]
    sent_from_files = "tributary_fetch_sendfile_bytes_total"
    before = metric_sum(secure.broker, sent_from_files)
    for listener in ("ssl", "mtls", "scram512"):
        assert consume(secure.ck(listener), topic, 40) == values, listener
    assert metric_sum(secure.broker, sent_from_files) == before, "a TLS fetch was sent from files"
    assert consume({"bootstrap.servers": secure.plaintext}, topic, 40) == values
    assert metric_sum(secure.broker, sent_from_files) > before, "the plaintext fetch was copied"


def test_kafka_python_over_ssl_and_mutual_tls(secure, topic):
    ck_create_topic(secure.plaintext, topic)
    for port, extra in ((secure.ports.ssl, {}),
                        (secure.ports.mtls, {"ssl_certfile": str(secure.pki.client_cert),
                                             "ssl_keyfile": str(secure.pki.client_key)})):
        conf = {"bootstrap_servers": secure.addr(port), "security_protocol": "SSL",
                "ssl_cafile": str(secure.pki.ca), **extra}
        producer = KafkaProducer(**conf)
        for i in range(10):
            producer.send(topic, f"kp-{port}-{i}".encode()).get(timeout=15)
        producer.close()
    consumer = KafkaConsumer(topic, auto_offset_reset="earliest", consumer_timeout_ms=5000,
                             bootstrap_servers=secure.addr(secure.ports.mtls), security_protocol="SSL",
                             ssl_cafile=str(secure.pki.ca), ssl_certfile=str(secure.pki.client_cert),
                             ssl_keyfile=str(secure.pki.client_key))
    values = [m.value for m in consumer]
    consumer.close()
    assert len(values) == 20


def test_kcat_produces_and_consumes_over_mutual_tls(secure, topic):
    ck_create_topic(secure.plaintext, topic)
    tls = ["-X", "security.protocol=SSL", "-X", f"ssl.ca.location={secure.pki.ca}",
           "-X", f"ssl.certificate.location={secure.pki.client_cert}",
           "-X", f"ssl.key.location={secure.pki.client_key}"]
    bootstrap = secure.addr(secure.ports.mtls)
    kcat("-b", bootstrap, *tls, "-P", "-t", topic, stdin="".join(f"kcat-{i}\n" for i in range(10)))
    out = kcat("-b", bootstrap, *tls, "-C", "-t", topic, "-o", "beginning", "-e", "-c", "10")
    assert out.stdout.split() == [f"kcat-{i}" for i in range(10)]
    md = json.loads(kcat("-b", bootstrap, *tls, "-L", "-J").stdout)
    assert [b["name"] for b in md["brokers"]] == [bootstrap]


def test_the_client_certificates_subject_is_the_principal_that_quotas_charge(secure, java, topic):
    ck_create_topic(secure.plaintext, topic)
    java.run("admin", "--bootstrap", secure.plaintext, "alter-quotas",
             "--entity", f"user={CLIENT_SUBJECT}", "--set", "producer_byte_rate=2048")
    throttles: dict[str, list[int]] = {"mtls": [], "ssl": []}
    for listener in ("mtls", "ssl"):
        conf = secure.ck(listener, **{"throttle_cb": lambda e, l=listener: throttles[l].append(e.throttle_time),
                                      "linger.ms": 0, "batch.size": 20000})
        producer = Producer(conf)
        for i in range(10):
            producer.produce(topic, value=b"x" * 10_000)
            producer.flush(20)
        producer.poll(0.5)
    assert throttles["mtls"] and max(throttles["mtls"]) > 0, "the quota of the certificate's subject applies"
    assert not any(throttles["ssl"]), "an anonymous TLS client is not that user"


@pytest.mark.parametrize("mechanism", ["scram512", "scram256"])
def test_scram_over_sasl_ssl_with_credentials_made_by_the_admin_api(secure, topic, mechanism):
    ck_create_topic(secure.plaintext, topic)
    produce(secure.ck(mechanism), topic)
    assert len(consume(secure.ck(mechanism), topic, 20)) == 20
    consumer = KafkaConsumer(topic, auto_offset_reset="earliest", consumer_timeout_ms=5000,
                             bootstrap_servers=secure.addr(secure.ports.sasl_ssl), security_protocol="SASL_SSL",
                             ssl_cafile=str(secure.pki.ca),
                             sasl_mechanism="SCRAM-SHA-512" if mechanism == "scram512" else "SCRAM-SHA-256",
                             sasl_plain_username="alice", sasl_plain_password=SCRAM_PASSWORD)
    assert len(list(consumer)) == 20
    consumer.close()


def test_java_client_scram_sha_512_over_sasl_ssl(secure, java, topic):
    ck_create_topic(secure.plaintext, topic)
    props = ["security.protocol=SASL_SSL", "sasl.mechanism=SCRAM-SHA-512",
             "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
             f'username="alice" password="{SCRAM_PASSWORD}";',
             "ssl.truststore.type=PEM", f"ssl.truststore.location={secure.pki.ca}"]
    args = [a for p in props for a in ("--prop", p)]
    bootstrap = secure.addr(secure.ports.sasl_ssl)
    produced = java.run("produce", "--bootstrap", bootstrap, "--topic", topic, "--count", "50", *args)
    assert produced.one("done")["acked"] == 50
    consumed = java.run("consume", "--bootstrap", bootstrap, "--topic", topic, "--max", "50", *args)
    assert len(consumed.events("record")) == 50


def test_plain_over_sasl_plaintext(secure, topic):
    ck_create_topic(secure.plaintext, topic)
    produce(secure.ck("plain"), topic)
    producer = KafkaProducer(bootstrap_servers=secure.addr(secure.ports.sasl_plaintext),
                             security_protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN",
                             sasl_plain_username="admin", sasl_plain_password=PLAIN_USERS["admin"])
    producer.send(topic, b"from-kafka-python").get(timeout=15)
    producer.close()
    assert len(consume(secure.ck("plain"), topic, 21)) == 21


class Tokens(AbstractTokenProvider):
    def __init__(self, issuer: TokenIssuer) -> None:
        super().__init__()
        self.issuer = issuer

    def token(self) -> str:
        return self.issuer.token(sub="svc-python")


def test_oauthbearer_with_a_token_signed_by_a_key_of_the_jwks(secure, topic):
    ck_create_topic(secure.plaintext, topic)
    produce(secure.ck("oauth"), topic)
    producer = KafkaProducer(bootstrap_servers=secure.addr(secure.ports.sasl_plaintext),
                             security_protocol="SASL_PLAINTEXT", sasl_mechanism="OAUTHBEARER",
                             sasl_oauth_token_provider=Tokens(secure.issuer))
    producer.send(topic, b"oauth-python").get(timeout=15)
    producer.close()
    assert len(consume(secure.ck("oauth"), topic, 21)) == 21
    log = secure.broker.log_text()
    assert "principal=User:svc-orders" in log and "principal=User:svc-python" in log


@pytest.fixture
def bystander(secure, topic):
    """A client connected over TLS before the refusals, which must keep being served."""
    ck_create_topic(secure.plaintext, topic)
    producer = Producer({**secure.ck("ssl"), "message.timeout.ms": 10000})

    def still_served(tag: str) -> None:
        results: list = []
        producer.produce(topic, value=tag.encode(), on_delivery=lambda e, m: results.append(e))
        producer.flush(10)
        assert results == [None], f"the connected client was not served after {tag}"

    still_served("before")
    return still_served


def test_bad_credentials_are_refused_with_a_message_while_others_are_served(secure, bystander):
    cases = {
        "wrong scram password": (secure.ck("scram512", **{"sasl.password": "guess"}), "invalid credentials"),
        "unknown scram user": (secure.ck("scram256", **{"sasl.username": "mallory"}), "invalid credentials"),
        "wrong plain password": (secure.ck("plain", **{"sasl.password": "guess"}), "Invalid username or password"),
        "expired token": (secure.ck("oauth", oauth_cb=lambda _: (secure.issuer.token(lifetime_s=-120), time.time() + 60)),
                          "expired"),
        "wrong audience": (secure.ck("oauth", oauth_cb=lambda _: (secure.issuer.token(audience="other"), time.time() + 60)),
                           "audience"),
    }
    for name, (conf, message) in cases.items():
        auth_error(conf, message, name)
        bystander(name)
    log = secure.broker.log_text()
    assert "SCRAM-SHA-512 authentication failed: user alice: wrong password" in log
    assert "user mallory: unknown user" in log


def test_untrusted_or_missing_client_certificates_are_refused(secure, bystander):
    bootstrap = secure.addr(secure.ports.mtls)
    rogue = {"bootstrap.servers": bootstrap, "security.protocol": "SSL", "ssl.ca.location": str(secure.pki.ca),
             "ssl.certificate.location": str(secure.pki.rogue_cert), "ssl.key.location": str(secure.pki.rogue_key)}
    for name, conf in (("untrusted certificate", rogue), ("no certificate", secure.ck("ssl", **{"bootstrap.servers": bootstrap}))):
        with pytest.raises(KafkaException):
            Producer(conf).list_topics(timeout=4)
        bystander(name)
    assert "TLS handshake failed" in secure.broker.log_text()


def test_plaintext_spoken_to_a_tls_port_closes_only_that_connection(secure, bystander):
    with Connection(secure.addr(secure.ports.ssl)) as conn:
        conn.send(frame(api_versions_request(0, 1)))
        assert conn.closed_by_peer(5)
    bystander("plaintext on the TLS port")


def sasl_handshake_v1(mechanism: str, correlation_id: int = 1) -> bytes:
    return frame(request_header(17, 1, correlation_id, "tests", flexible=False) + string(mechanism))


def sasl_authenticate_v1(token: bytes, correlation_id: int = 2) -> bytes:
    return frame(request_header(36, 1, correlation_id, "tests", flexible=False) + int32(len(token)) + token)


def parse_sasl_authenticate_v1(response: bytes) -> tuple[int, Optional[str], int]:
    (error,) = struct.unpack(">h", response[4:6])
    (n,) = struct.unpack(">h", response[6:8])
    pos = 8
    message = None
    if n >= 0:
        message = response[pos:pos + n].decode()
        pos += n
    (size,) = struct.unpack(">i", response[pos:pos + 4])
    pos += 4 + max(size, 0)
    (lifetime,) = struct.unpack(">q", response[pos:pos + 8])
    return error, message, lifetime


def test_garbage_in_the_sasl_handshake_and_requests_before_it_close_the_connection(secure, bystander):
    addr = secure.addr(secure.ports.sasl_plaintext)
    with Connection(addr) as conn:  # a Metadata request before authenticating
        conn.send(frame(request_header(3, 4, 1, "tests", flexible=False) + int32(-1) + b"\x00"))
        assert conn.closed_by_peer(5)
    with Connection(addr) as conn:  # a SaslHandshake body that does not decode
        conn.send(frame(request_header(17, 1, 1, "tests", flexible=False) + b"\xff\xff\xff"))
        assert conn.closed_by_peer(5)
    with Connection(addr) as conn:  # a mechanism the listener does not enable
        conn.send(sasl_handshake_v1("GSSAPI"))
        response = conn.recv_frame()
        assert struct.unpack(">h", response[4:6])[0] == 33  # UNSUPPORTED_SASL_MECHANISM
        assert conn.closed_by_peer(5)
    with Connection(addr) as conn:  # SCRAM garbage after a good handshake
        conn.send(sasl_handshake_v1("SCRAM-SHA-512"))
        assert struct.unpack(">h", conn.recv_frame()[4:6])[0] == 0
        conn.send(sasl_authenticate_v1(b"\x00\xffnot scram at all"))
        error, message, _ = parse_sasl_authenticate_v1(conn.recv_frame())
        assert error == 58 and "Invalid SCRAM message" in message  # SASL_AUTHENTICATION_FAILED
        assert conn.closed_by_peer(5)
    bystander("garbage in the SASL handshake")
    # ApiVersions is answered before authentication and lists the SASL APIs.
    with Connection(addr) as conn:
        conn.send(frame(api_versions_request(1, 9)))
        response = conn.recv_frame()
        assert struct.unpack(">i", response[:4])[0] == 9


def server_serial(addr: str, ca: Path) -> int:
    host, port = addr.rsplit(":", 1)
    context = ssl.create_default_context(cafile=str(ca))
    with socket.create_connection((host, int(port)), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            return x509.load_der_x509_certificate(tls.getpeercert(binary_form=True)).serial_number


def test_a_rotated_server_certificate_is_served_to_new_connections(tmp_path, topic):
    s = start_secure_broker(tmp_path)
    try:
        ck_create_topic(s.plaintext, topic)
        addr = s.addr(s.ports.ssl)
        before = server_serial(addr, s.pki.ca)
        assert before == s.pki.server_serial
        connected = Producer(s.ck("ssl"))
        produce(s.ck("ssl"), topic, 1)
        rotated = s.pki.rotate_server()
        wait_until(lambda: server_serial(addr, s.pki.ca) == rotated, 10, "the new certificate on new connections")
        results: list = []
        connected.produce(topic, value=b"after", on_delivery=lambda e, m: results.append(e))
        connected.flush(10)
        assert results == [None], "connections opened before the rotation carry on"
        assert "reloaded after the files changed" in s.broker.log_text()
    finally:
        s.broker.stop()


def test_sessions_are_re_authenticated_or_closed_when_they_expire(tmp_path, topic):
    s = start_secure_broker(tmp_path, {"connections.max.reauth.ms": "1500"})
    try:
        ck_create_topic(s.plaintext, topic)
        # librdkafka re-authenticates (KIP-368) and keeps producing on the same connection.
        producer = Producer({**s.ck("plain"), "message.timeout.ms": 10000})
        delivered: list = []
        end = time.monotonic() + 5
        while time.monotonic() < end:
            producer.produce(topic, value=b"r", on_delivery=lambda e, m: delivered.append(e))
            producer.poll(0.1)
        producer.flush(10)
        assert delivered and all(e is None for e in delivered)
        successes = s.broker.log_text().count("SASL authentication succeeded")
        assert successes >= 4, f"expected re-authentications, saw {successes} authentications"
        # A client that does not re-authenticate is closed at its next request after expiry.
        with Connection(s.addr(s.ports.sasl_plaintext)) as conn:
            conn.send(sasl_handshake_v1("PLAIN"))
            conn.recv_frame()
            conn.send(sasl_authenticate_v1(b"\x00alice\x00" + PLAIN_USERS["alice"].encode()))
            error, _, lifetime = parse_sasl_authenticate_v1(conn.recv_frame())
            assert (error, lifetime) == (0, 1500)
            conn.send(frame(api_versions_request(1, 3)))
            conn.recv_frame()
            time.sleep(1.7)
            conn.send(frame(api_versions_request(1, 4)))
            assert conn.closed_by_peer(5)
        assert "expired without re-authentication" in s.broker.log_text()
    finally:
        s.broker.stop()


def test_unauthenticated_connections_are_bounded_in_number_and_time(tmp_path):
    s = start_secure_broker(tmp_path, {"max.unauthenticated.connections": "2",
                                       "authentication.timeout.ms": "1500"})
    try:
        addr = s.addr(s.ports.sasl_plaintext)
        idle = [Connection(addr), Connection(addr)]
        third = Connection(addr)
        assert third.closed_by_peer(3), "over max.unauthenticated.connections"
        started = time.monotonic()
        assert all(c.closed_by_peer(5) for c in idle), "idle handshakes time out"
        assert time.monotonic() - started < 4
        for c in (*idle, third):
            c.close()
        produce(s.ck("plain"), "after-the-limits", 1)
        log = s.broker.log_text()
        assert "max.unauthenticated.connections" in log and "not completed in time" in log
    finally:
        s.broker.stop()


def test_inconsistent_listener_settings_stop_the_broker_with_a_clear_error(tmp_path):
    config = tmp_path / "bad.yaml"
    port = free_port()
    config.write_text(json.dumps({"listeners": f"PLAINTEXT://127.0.0.1:{port},SECURE://127.0.0.1:{free_port()}"}))
    broker = BrokerProcess("tributary", tmp_path / "b", settings={"config": config}, port=port)
    # The start-up wait reports the exit (BrokerDied) with the log, as its last error.
    with pytest.raises(AssertionError) as died:
        broker.start(timeout=10)
    assert "exited" in str(died.value)
    assert "no security protocol for listener SECURE" in broker.log_text()
