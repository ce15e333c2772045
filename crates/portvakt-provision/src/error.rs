//! Why provisioning could not go on.

use std::fmt;

/// A request to the admin API that failed, with the scope and organization it was about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// `GET`, `POST`, `PUT`, `DELETE`.
    pub method: &'static str,
    /// The path below the base URL, with its query, e.g. `/scopes?scope=nav:arbeid:x`.
    pub path: String,
    /// The HTTP status, when an answer came.
    pub status: Option<u16>,
    /// What the answer (or the network) said.
    pub message: String,
    /// The scope the request was about.
    pub scope: Option<String>,
    /// The organization the request was about (grants and revocations).
    pub orgno: Option<String>,
    /// How many times the request was sent.
    pub attempts: u32,
}

impl ApiError {
    /// Whether Digdir refused the request itself (a 4xx): retrying would not help.
    pub fn is_refusal(&self) -> bool {
        self.status.is_some_and(|s| (400..500).contains(&s))
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method, self.path)?;
        match (&self.scope, &self.orgno) {
            (Some(scope), Some(orgno)) => write!(f, " (scope {scope}, organization {orgno})")?,
            (Some(scope), None) => write!(f, " (scope {scope})")?,
            _ => {}
        }
        match self.status {
            Some(status) => write!(f, " answered {status}: {}", self.message)?,
            None => write!(f, " failed: {}", self.message)?,
        }
        if self.attempts > 1 {
            write!(f, " (after {} attempts)", self.attempts)?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

/// Why a plan could not be made or an apply could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProvisionError {
    /// The manifest has errors, or lacks what names the scopes' owner.
    #[error("{0}")]
    Manifest(String),
    /// A setting is missing or wrong.
    #[error("{0}")]
    Config(String),
    /// No admin token could be obtained.
    #[error("could not get an admin token: {0}")]
    Token(#[from] portvakt::client::TokenError),
    /// A request to the admin API failed.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The manifest names a delegation source Digdir does not offer.
    #[error(
        "scope {scope} names delegation source \"{name}\", which this Digdir does not offer (it offers: {offered})"
    )]
    UnknownDelegationSource {
        /// The scope.
        scope: String,
        /// The manifest's name, e.g. `altinn`.
        name: String,
        /// What `GET /delegationsources` listed.
        offered: String,
    },
}
