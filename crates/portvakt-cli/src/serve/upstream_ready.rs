//! Readiness of the proxy's upstream: with `--upstream`, `/readyz` answers 200 only while the
//! upstream accepts TCP connections, so Kubernetes routes no traffic to the pod before the app
//! behind the proxy is up (the app starts after portvakt, as its child or as the next
//! container), and takes the pod out of the Service when the app stops listening.
//!
//! A connection is opened and closed on every probe (Kubernetes probes every few seconds);
//! nothing is sent, so the app's logs and metrics see no request.

use std::time::Duration;

use url::Url;

/// How long the upstream may take to accept the probe's connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// The upstream to probe.
#[derive(Debug, Clone)]
pub struct UpstreamReadiness {
    host: String,
    port: u16,
}

impl UpstreamReadiness {
    /// For an `http://host:port` upstream (as the proxy's configuration has checked it).
    pub fn new(upstream: &Url) -> Option<UpstreamReadiness> {
        Some(UpstreamReadiness {
            host: upstream.host_str()?.trim_matches(['[', ']']).to_owned(),
            port: upstream.port_or_known_default()?,
        })
    }

    /// `Ok` when a TCP connection to the upstream opens within [`CONNECT_TIMEOUT`]; else why
    /// not, for `/readyz`'s `reason`.
    pub async fn check(&self) -> Result<(), String> {
        let connect = tokio::net::TcpStream::connect((self.host.as_str(), self.port));
        match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!(
                "the upstream {}:{} does not accept connections yet ({e}); the app behind the proxy is not up",
                self.host, self.port
            )),
            Err(_) => Err(format!(
                "the upstream {}:{} did not accept a connection within {CONNECT_TIMEOUT:?}",
                self.host, self.port
            )),
        }
    }
}
