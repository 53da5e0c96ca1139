//! STOMP destinations as RabbitMQ's STOMP plugin names them.

/// A parsed destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// `/queue/q`: a shared queue, declared on first use.
    Queue(String),
    /// `/topic/k`: `amq.topic` with routing key `k`.
    Topic(String),
    /// `/exchange/e[/k]`.
    Exchange(String, String),
    /// `/amq/queue/q`: an existing queue, never declared.
    AmqQueue(String),
    /// `/temp-queue/x`: a queue private to this connection.
    TempQueue(String),
    /// `/reply-queue/q`: the queue behind someone's temp queue (replies go here).
    ReplyQueue(String),
}

impl Destination {
    /// Parses a destination header; `Err` names what is wrong.
    pub fn parse(s: &str) -> Result<Destination, String> {
        let rest = |p: &str| s.strip_prefix(p).filter(|r| !r.is_empty());
        if let Some(q) = rest("/queue/") {
            return Ok(Destination::Queue(q.to_string()));
        }
        if let Some(k) = rest("/topic/") {
            return Ok(Destination::Topic(k.to_string()));
        }
        if let Some(q) = rest("/amq/queue/") {
            return Ok(Destination::AmqQueue(q.to_string()));
        }
        if let Some(x) = rest("/temp-queue/") {
            return Ok(Destination::TempQueue(x.to_string()));
        }
        if let Some(q) = rest("/reply-queue/") {
            return Ok(Destination::ReplyQueue(q.to_string()));
        }
        if let Some(ek) = rest("/exchange/") {
            let (e, k) = ek.split_once('/').unwrap_or((ek, ""));
            if e.is_empty() {
                return Err(format!("'{s}' names no exchange"));
            }
            return Ok(Destination::Exchange(e.to_string(), k.to_string()));
        }
        Err(format!(
            "'{s}' is not a valid destination: use /queue/, /topic/, /exchange/, /amq/queue/, /temp-queue/ or /reply-queue/"
        ))
    }

    /// The destination a message published to (exchange, routing key) is shown with.
    pub fn for_message(exchange: &str, routing_key: &str) -> String {
        match exchange {
            "" => format!("/queue/{routing_key}"),
            "amq.topic" => format!("/topic/{routing_key}"),
            e if routing_key.is_empty() => format!("/exchange/{e}"),
            e => format!("/exchange/{e}/{routing_key}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        assert_eq!(
            Destination::parse("/queue/a"),
            Ok(Destination::Queue("a".into()))
        );
        assert_eq!(
            Destination::parse("/topic/a.b"),
            Ok(Destination::Topic("a.b".into()))
        );
        assert_eq!(
            Destination::parse("/exchange/logs/error"),
            Ok(Destination::Exchange("logs".into(), "error".into()))
        );
        assert_eq!(
            Destination::parse("/exchange/logs"),
            Ok(Destination::Exchange("logs".into(), "".into()))
        );
        assert_eq!(
            Destination::parse("/amq/queue/x"),
            Ok(Destination::AmqQueue("x".into()))
        );
        assert_eq!(
            Destination::parse("/temp-queue/r"),
            Ok(Destination::TempQueue("r".into()))
        );
        assert!(Destination::parse("/queue/").is_err());
        assert!(Destination::parse("queue/a").is_err());
        assert!(Destination::parse("/exchange/").is_err());
    }

    #[test]
    fn message_destinations() {
        assert_eq!(Destination::for_message("", "q"), "/queue/q");
        assert_eq!(Destination::for_message("amq.topic", "a.b"), "/topic/a.b");
        assert_eq!(
            Destination::for_message("logs", "error"),
            "/exchange/logs/error"
        );
    }
}
