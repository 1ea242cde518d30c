"""DeleteRecords through librdkafka's AdminClient: the log start offset moves, earlier offsets
are out of range, and deleting past the high watermark is refused."""

from confluent_kafka import KafkaException, TopicPartition

from pyclients import ck_admin, ck_consume, ck_create_topic, ck_produce


def test_delete_records_moves_the_log_start_offset(broker, topic):
    ck_create_topic(broker.bootstrap, topic, partitions=1)
    reports = ck_produce(broker.bootstrap, topic, [{"value": f"{i}".encode(), "partition": 0} for i in range(10)])
    assert [r.offset for r in reports] == list(range(10))

    admin = ck_admin(broker.bootstrap)
    futures = admin.delete_records([TopicPartition(topic, 0, 4)], request_timeout=15)
    deleted = futures[TopicPartition(topic, 0, 4)].result(timeout=15)
    assert deleted.low_watermark == 4

    got = ck_consume(broker.bootstrap, topic, [0], expected=6, offset=-2)  # from the beginning
    assert [r.offset for r in got] == list(range(4, 10))

    beyond = TopicPartition(topic, 0, 50)
    failed = admin.delete_records([beyond], request_timeout=15)[beyond]
    try:
        failed.result(timeout=15)
    except KafkaException as error:
        assert error.args[0].code() == 1  # OFFSET_OUT_OF_RANGE
    else:
        raise AssertionError("deleting past the high watermark must fail")
