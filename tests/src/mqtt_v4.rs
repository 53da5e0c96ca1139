//! An MQTT 3.1.1 client (rumqttc) whose incoming packets arrive on a channel, for tests.

use rumqttc::{AsyncClient, Event, MqttOptions, Packet};
use tokio::sync::mpsc;

/// Starts a client with `options`, its event loop on a task of its own: every incoming packet
/// is sent on the channel, and a `Disconnect` when the connection ends.
pub fn spawn(options: MqttOptions) -> (AsyncClient, mpsc::UnboundedReceiver<Packet>) {
    let (client, mut el) = AsyncClient::new(options, 10);
    let (tx, events) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(ev) = el.poll().await {
            if let Event::Incoming(p) = ev {
                if tx.send(p).is_err() {
                    return;
                }
            }
        }
        let _ = tx.send(Packet::Disconnect);
    });
    (client, events)
}
