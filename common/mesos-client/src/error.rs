//! The client's error type and the mapping from HTTP answers to Mesos meaning.

use http::StatusCode;
use url::Url;

/// Everything that can go wrong talking to a Mesos master.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No leading master is known (detection pending or no leader elected); retry later.
    #[error("no leading Mesos master is known yet")]
    NoLeader,
    /// There is no active subscription (before SUBSCRIBED or while reconnecting);
    /// re-issue the call after the next SUBSCRIBED.
    #[error("not subscribed to a Mesos master (waiting for SUBSCRIBED)")]
    NotSubscribed,
    /// The client was shut down; nothing more will be sent.
    #[error("the scheduler client has shut down")]
    Closed,
    /// The HTTP client could not be built (TLS setup); not retryable.
    #[error("cannot set up the HTTP client: {0}")]
    HttpClient(#[source] reqwest::Error),
    /// The HTTP exchange failed (refused, reset, timed out); retrying may help.
    #[error("HTTP request to the Mesos master at {url} failed: {source}")]
    Transport {
        /// The URL that was being requested.
        url: Url,
        /// What the HTTP client reported.
        #[source]
        source: reqwest::Error,
    },
    /// 307: this master is not the leader; `leader` is where it points.
    #[error("the Mesos master is not the leader; the leader is {}", leader.as_ref().map_or("unknown".to_owned(), Url::to_string))]
    NotLeader {
        /// The leading master's base URL, from `Location`.
        leader: Option<Url>,
    },
    /// 400: the call was malformed or invalid for the master; fix the call, retrying will not help.
    #[error("the Mesos master rejected the call as invalid (400 Bad Request): {message}")]
    BadRequest {
        /// The master's explanation.
        message: String,
    },
    /// 401: HTTP authentication is enabled and the principal/secret are missing or wrong.
    #[error(
        "the Mesos master refused our credentials (401 Unauthorized): check the principal and secret"
    )]
    Unauthorized,
    /// 403: the framework is not subscribed on that master (the stream broke) or is not authorized.
    #[error("the Mesos master refused the call (403 Forbidden): {message}")]
    Forbidden {
        /// The master's explanation.
        message: String,
    },
    /// 503 or 429: the master is recovering, has no leader, or is rate limiting; retry with backoff.
    #[error("the Mesos master is unavailable ({status}): {message}")]
    Unavailable {
        /// The status code.
        status: StatusCode,
        /// The master's explanation.
        message: String,
    },
    /// Any other unexpected answer.
    #[error("the Mesos master answered {status}: {message}")]
    Unexpected {
        /// The status code.
        status: StatusCode,
        /// The body, as text.
        message: String,
    },
    /// SUBSCRIBE answered without the `Mesos-Stream-Id` header, or with another content type.
    #[error("invalid SUBSCRIBE response: {0}")]
    InvalidSubscribeResponse(String),
    /// The master refused or ended the subscription with an ERROR event
    /// (for example "Framework has been removed"); fatal for this client.
    #[error("the Mesos master ended the subscription: {message}")]
    SubscriptionError {
        /// The ERROR event's message.
        message: String,
    },
    /// The event stream was not valid RecordIO.
    #[error("corrupt event stream from the Mesos master: {0}")]
    Framing(#[from] mesos_recordio::Error),
    /// An event could not be decoded.
    #[error("undecodable event from the Mesos master: {0}")]
    Decode(#[from] mesos_proto::DecodeError),
    /// No bytes arrived for the given number of heartbeat intervals.
    #[error("no heartbeat from the Mesos master for {0:?}")]
    HeartbeatTimeout(std::time::Duration),
}

impl Error {
    /// Whether a later attempt may succeed without any change on our side.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::NoLeader
                | Error::NotSubscribed
                | Error::Transport { .. }
                | Error::NotLeader { .. }
                | Error::Forbidden { .. }
                | Error::Unavailable { .. }
                | Error::InvalidSubscribeResponse(_)
                | Error::Framing(_)
                | Error::Decode(_)
                | Error::HeartbeatTimeout(_)
        )
    }
}

/// Maps a non-success answer to an error; `location` is the `Location`
/// header, resolved against `base` (Mesos sends protocol-relative ones).
pub fn classify(status: StatusCode, location: Option<&str>, body: &str, base: &Url) -> Error {
    let message = if body.trim().is_empty() {
        status.canonical_reason().unwrap_or("no message").to_owned()
    } else {
        body.trim().to_owned()
    };
    match status {
        StatusCode::TEMPORARY_REDIRECT => Error::NotLeader {
            leader: location.and_then(|l| leader_from_location(base, l)),
        },
        StatusCode::BAD_REQUEST => Error::BadRequest { message },
        StatusCode::UNAUTHORIZED => Error::Unauthorized,
        StatusCode::FORBIDDEN => Error::Forbidden { message },
        StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS => {
            Error::Unavailable { status, message }
        }
        _ => Error::Unexpected { status, message },
    }
}

/// The leader's base URL from a `Location` such as `//host:5050/api/v1/scheduler`.
pub fn leader_from_location(base: &Url, location: &str) -> Option<Url> {
    let mut leader = base.join(location).ok()?;
    leader.set_path("/");
    leader.set_query(None);
    leader.set_fragment(None);
    Some(leader)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Url {
        Url::parse("http://127.0.0.1:5050/").expect("static URL")
    }

    #[test]
    fn protocol_relative_location_keeps_our_scheme() {
        let leader = leader_from_location(&base(), "//10.0.0.2:5051/master/api/v1/scheduler");
        assert_eq!(
            leader.map(String::from),
            Some("http://10.0.0.2:5051/".into())
        );
    }

    #[test]
    fn statuses_map_to_mesos_meaning() {
        let redirect = classify(
            StatusCode::TEMPORARY_REDIRECT,
            Some("//m2:5050/api/v1/scheduler"),
            "",
            &base(),
        );
        assert!(
            matches!(redirect, Error::NotLeader { leader: Some(ref u) } if u.as_str() == "http://m2:5050/")
        );
        let bad = classify(
            StatusCode::BAD_REQUEST,
            None,
            "Expecting 'type' to be present",
            &base(),
        );
        assert!(!bad.is_retryable());
        assert!(bad.to_string().contains("Expecting 'type' to be present"));
        assert!(
            classify(
                StatusCode::FORBIDDEN,
                None,
                "Framework is not subscribed",
                &base()
            )
            .is_retryable()
        );
        assert!(classify(StatusCode::SERVICE_UNAVAILABLE, None, "", &base()).is_retryable());
        assert!(!classify(StatusCode::UNAUTHORIZED, None, "", &base()).is_retryable());
    }
}
