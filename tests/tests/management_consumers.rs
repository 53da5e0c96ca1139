//! `/api/consumers` and `/api/channels` against a real broker: an AMQP consumer on its second
//! channel, read back by `rabbitmq_http_client` (the client behind rabbitmqadmin v2) with its
//! channel's details; channels with their prefetch, consumers, unacked count and modes.

use junction_tests::management::client;
use junction_tests::{within, TestBroker};
use lapin::options::{BasicConsumeOptions, BasicQosOptions, QueueDeclareOptions};
use lapin::types::FieldTable;

/// A connection with two open channels and, on the second (prefetch 7, confirms when asked), a
/// consumer tagged `tag` of queue `queue`.
async fn consumer_on_channel_two(
    b: &TestBroker,
    queue: &str,
    tag: &str,
    confirms: bool,
) -> (lapin::Connection, [lapin::Channel; 2], lapin::Consumer) {
    let conn = within(lapin::Connection::connect(
        &b.amqp_uri_for("guest", "guest", "%2f"),
        lapin::ConnectionProperties::default(),
    ))
    .await
    .expect("connect");
    let first = within(conn.create_channel()).await.expect("channel 1");
    let ch = within(conn.create_channel()).await.expect("channel 2");
    within(ch.queue_declare(queue, QueueDeclareOptions::default(), FieldTable::default()))
        .await
        .expect("declare");
    within(ch.basic_qos(7, BasicQosOptions::default()))
        .await
        .expect("qos");
    if confirms {
        within(ch.confirm_select(Default::default()))
            .await
            .expect("confirms");
    }
    let consumer = within(ch.basic_consume(
        queue,
        tag,
        BasicConsumeOptions::default(),
        FieldTable::default(),
    ))
    .await
    .expect("consume");
    // Both channels stay open while the caller holds them (lapin closes a dropped one).
    (conn, [first, ch], consumer)
}

#[tokio::test]
async fn an_amqp_consumer_is_listed_with_its_channel_and_prefetch() {
    let b = TestBroker::start().await;
    let (conn, _channels, _consumer) =
        consumer_on_channel_two(&b, "watched", "watcher", false).await;

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

#[tokio::test]
async fn amqp_channels_are_listed_with_prefetch_consumers_unacked_and_modes() {
    let b = TestBroker::start().await;
    let (conn, [_first, ch], _consumer) = consumer_on_channel_two(&b, "held", "holder", true).await;
    for _ in 0..3 {
        within(ch.basic_publish("", "held", Default::default(), b"m", Default::default()))
            .await
            .expect("publish")
            .await
            .expect("confirmed");
    }
    let admin = client(&b, "guest", "guest");
    let channels = within(async {
        loop {
            let all = admin.list_channels().await.expect("channels");
            if all.iter().any(|c| c.messages_unacknowledged == 3) {
                return all;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await;
    assert_eq!(channels.len(), 2, "{channels:?}");
    let two = channels.iter().find(|c| c.id == 2).expect("channel 2");
    assert_eq!(
        (
            two.prefetch_count,
            two.consumer_count,
            two.has_publisher_confirms_enabled
        ),
        (7, 1, true)
    );
    let conns = within(admin.list_connections()).await.expect("connections");
    assert_eq!(two.name, format!("{} (2)", conns[0].name));
    assert_eq!(conns[0].channel_count, 2);
    let on = within(admin.list_channels_on(&conns[0].name))
        .await
        .expect("channels of the connection");
    assert_eq!(on.len(), 2);
    assert_eq!(
        within(admin.list_channels_in("/"))
            .await
            .expect("in /")
            .len(),
        2
    );
    // A closed channel leaves the listing.
    within(ch.close(200, "done")).await.expect("close channel");
    let left = within(async {
        loop {
            let all = admin.list_channels().await.expect("channels");
            if all.len() == 1 {
                return all;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await;
    assert_eq!(left[0].id, 1);
    within(conn.close(200, "bye")).await.expect("close");
    b.stop().await;
}
