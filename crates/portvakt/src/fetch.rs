//! Bounded HTTP GETs to the issuer: a timeout on every request, no redirects, a size cap.

use std::time::Duration;

use url::Url;

/// The largest discovery or JWKS document we read. Real ones are a few KiB.
pub(crate) const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;

/// Why a document could not be fetched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// Connection refused, DNS, TLS, or timeout.
    #[error("could not reach {url}: {reason}")]
    Unreachable {
        /// What was fetched.
        url: String,
        /// The client's reason.
        reason: String,
    },
    /// A status other than 200.
    #[error("{url} answered HTTP {status}")]
    Status {
        /// What was fetched.
        url: String,
        /// The status code.
        status: u16,
    },
    /// The document is larger than we read.
    #[error("{url} sent more than {MAX_DOCUMENT_BYTES} bytes")]
    TooLarge {
        /// What was fetched.
        url: String,
    },
}

/// The client for every request to the issuer: a timeout on connect and on the whole
/// request, no redirects. A builder failure (TLS or platform trouble) is returned, never
/// papered over with a default client: that one has no timeout, so a hanging issuer would
/// stall refreshes forever. The validator reports it as
/// [`StartError::HttpClient`](crate::StartError::HttpClient) when it starts.
pub(crate) fn try_client(timeout: Duration) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        // A redirect could take us from the configured https host elsewhere; issuers that
        // move should be reconfigured, visibly.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("portvakt/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| describe(&e))
}

/// GETs a JSON document, reading at most [`MAX_DOCUMENT_BYTES`].
pub(crate) async fn get_document(
    client: &reqwest::Client,
    url: &Url,
) -> Result<Vec<u8>, FetchError> {
    let unreachable = |e: reqwest::Error| FetchError::Unreachable {
        url: url.to_string(),
        reason: describe(&e),
    };
    let mut response = client
        .get(url.clone())
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(unreachable)?;
    let status = response.status();
    if status != reqwest::StatusCode::OK {
        return Err(FetchError::Status {
            url: url.to_string(),
            status: status.as_u16(),
        });
    }
    if response
        .content_length()
        .is_some_and(|len| len > MAX_DOCUMENT_BYTES as u64)
    {
        return Err(FetchError::TooLarge {
            url: url.to_string(),
        });
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
        if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
            return Err(FetchError::TooLarge {
                url: url.to_string(),
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A reqwest error with its chain of causes, or just "timed out".
pub(crate) fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        return "timed out".to_owned();
    }
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}
