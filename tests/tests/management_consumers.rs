//! `/api/consumers` against a real broker: an AMQP consumer on its second channel, read back
//! by `rabbitmq_http_client` (the client behind rabbitmqadmin v2) with its channel's details.

use junction_tests::management::client;
use junction_tests::{within, TestBroker};
use lapin::options::{BasicConsumeOptions, BasicQosOptions, QueueDeclareOptions};
use lapin::types::FieldTable;

#[tokio::test]
async fn an_amqp_consumer_is_listed_with_its_channel_and_prefetch() {
    let b = TestBroker::start().await;
    let conn = within(lapin::Connection::connect(
        &b.amqp_uri_for("guest", "guest", "%2f"),
        lapin::ConnectionProperties::default(),
    ))
    .await
    .expect("connect");
    let _first = within(conn.create_channel()).await.expect("channel 1");
    let ch = within(conn.create_channel()).await.expect("channel 2");
    within(ch.queue_declare(
        "watched",
        QueueDeclareOptions::default(),
        FieldTable::default(),
    ))
    .await
    .expect("declare");
    within(ch.basic_qos(7, BasicQosOptions::default()))
        .await
        .expect("qos");
    let _consumer = within(ch.basic_consume(
        "watched",
        "watcher",
        BasicConsumeOptions::default(),
        FieldTable::default(),
    ))
    .await
    .expect("consume");

    let admin = client(&b, "guest", "guest");
    let all = within(admin.list_consumers()).await.expect("consumers");
    assert_eq!(all.len(), 1, "{all:?}");
    let c = &all[0];
    assert_eq!(
        (c.consumer_tag.as_str(), c.queue.name.as_str()),
        ("watcher", "watched")
    );
    assert_eq!(
        (c.prefetch_count, c.manual_ack, c.exclusive, c.active),
        (7, true, false, true)
    );
    let details = c.channel_details.as_ref().expect("channel details");
    assert_eq!(details.id, 2, "the consumer's channel");
    let conns = within(admin.list_connections()).await.expect("connections");
    assert_eq!(details.connection_name, conns[0].name);
    assert_eq!(
        within(admin.list_consumers_in("/"))
            .await
            .expect("in /")
            .len(),
        1
    );
    within(conn.close(200, "bye")).await.expect("close");
    b.stop().await;
}
