"""Delegation tokens (KIP-48) with the Java client: the admin client creates, describes, renews
and expires them over SASL_SSL, a producer logs in with a token (SCRAM with tokenauth=true) as
its owner, a PLAINTEXT admin is refused, and an expired token no longer logs in."""

from __future__ import annotations

import pytest
from confluent_kafka.admin import AdminClient, ScramCredentialInfo, ScramMechanism, UserScramCredentialUpsertion

from pyclients import ck_create_topic
from test_security import SCRAM_PASSWORD, start_secure_broker

pytestmark = [
    pytest.mark.peer_gap("the peer broker serves no SASL listeners"),
    pytest.mark.single_broker("tokens of a cluster are shared through its SCRAM Secret; this runs one "
                              "broker's listeners from its properties"),
]


@pytest.fixture(scope="module")
def tokens_broker(tmp_path_factory):
    s = start_secure_broker(tmp_path_factory.mktemp("tokens"),
                            {"delegation.token.secret.key": "test-token-secret"})
    admin = AdminClient({"bootstrap.servers": s.plaintext})
    upserts = [UserScramCredentialUpsertion("alice", ScramCredentialInfo(m, 8192), SCRAM_PASSWORD.encode())
               for m in (ScramMechanism.SCRAM_SHA_256, ScramMechanism.SCRAM_SHA_512)]
    for future in admin.alter_user_scram_credentials(upserts).values():
        future.result(10)
    yield s
    s.broker.stop()


def sasl_props(s, username: str, password: str, token: bool = False) -> list[str]:
    extension = ' tokenauth="true"' if token else ""
    props = ["security.protocol=SASL_SSL", "sasl.mechanism=SCRAM-SHA-256",
             "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
             f'username="{username}" password="{password}"{extension};',
             "ssl.truststore.type=PEM", f"ssl.truststore.location={s.pki.ca}"]
    return [a for p in props for a in ("--prop", p)]


def test_java_admin_manages_tokens_and_a_producer_logs_in_with_one(tokens_broker, java, topic):
    s = tokens_broker
    bootstrap = s.addr(s.ports.sasl_ssl)
    alice = sasl_props(s, "alice", SCRAM_PASSWORD)

    def admin(op: str, *args: str, props=alice, server=bootstrap):
        return java.run("admin", op, "--bootstrap", server, *args, *props)

    created = admin("create-token", "--renewer", "User:bob").one("token")
    assert created["owner"] == "User:alice" and created["requester"] == "User:alice"
    assert created["renewers"] == ["User:bob"]
    assert created["expiry"] - created["issue"] == 24 * 3600 * 1000

    described = admin("describe-tokens").one("tokens")["tokens"]
    assert [t["tokenId"] for t in described] == [created["tokenId"]]
    assert described[0]["hmac"] == created["hmac"]

    renewed = admin("renew-token", "--hmac", created["hmac"], "--period-ms", "60000").one("renewed")
    assert created["issue"] < renewed["expiry"] < created["expiry"]

    refused = admin("create-token", props=[], server=s.plaintext).one("refused")
    assert refused["error"] == "UnsupportedByAuthenticationException", refused

    ck_create_topic(s.plaintext, topic)
    as_token = sasl_props(s, created["tokenId"], created["hmac"], token=True)
    produced = java.run("produce", "--bootstrap", bootstrap, "--topic", topic, "--count", "10", *as_token)
    assert produced.one("done")["acked"] == 10
    from_token = admin("create-token", props=as_token).one("refused")
    assert from_token["error"] == "UnsupportedByAuthenticationException", from_token

    expired = admin("expire-token", "--hmac", created["hmac"], "--period-ms", "-1").one("expired")
    assert expired["expiry"] <= renewed["expiry"]
    assert admin("describe-tokens").one("tokens")["tokens"] == []
    again = admin("renew-token", "--hmac", created["hmac"]).one("refused")
    assert again["error"] == "DelegationTokenNotFoundException", again
    after = java.run("produce", "--bootstrap", bootstrap, "--topic", topic, "--count", "1", *as_token)
    assert after.one("done")["acked"] == 0
    assert after.one("error")["error"] == "SaslAuthenticationException", after.describe()
