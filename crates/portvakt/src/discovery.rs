//! Authorization server metadata: RFC 8414 (`/.well-known/oauth-authorization-server`, what
//! Maskinporten publishes) and OpenID Connect discovery (`/.well-known/openid-configuration`).
//! Both carry `issuer` and `jwks_uri`, which is all validation needs.

use url::Url;

use crate::config::checked_url;
use crate::encoding::parse_json_object;

/// The parts of a discovery document portvakt uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovery {
    /// `issuer`: compared exactly with every token's `iss`.
    pub issuer: String,
    /// `jwks_uri`: where the signing keys are.
    pub jwks_uri: Url,
    /// `token_endpoint`, for clients.
    pub token_endpoint: Option<Url>,
}

/// A discovery document that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DiscoveryError {
    /// Not a JSON object.
    #[error("discovery document {0}")]
    NotJson(String),
    /// A required member is missing or not a string.
    #[error("discovery document has no string `{0}`")]
    Missing(&'static str),
    /// A URL in it is malformed or insecure.
    #[error("discovery document: {0}")]
    BadUrl(String),
}

impl Discovery {
    /// Parses a discovery document.
    pub fn parse(document: &[u8]) -> Result<Discovery, DiscoveryError> {
        let object =
            parse_json_object(document).map_err(|e| DiscoveryError::NotJson(e.to_string()))?;
        let string = |name: &'static str| {
            object
                .get(name)
                .and_then(|v| v.as_str())
                .filter(|s| !s.is_empty())
                .ok_or(DiscoveryError::Missing(name))
        };
        let issuer = string("issuer")?.to_owned();
        let jwks_uri = checked_url("jwks_uri", string("jwks_uri")?)
            .map_err(|e| DiscoveryError::BadUrl(e.to_string()))?;
        let token_endpoint = match string("token_endpoint") {
            Ok(url) => Some(
                checked_url("token_endpoint", url)
                    .map_err(|e| DiscoveryError::BadUrl(e.to_string()))?,
            ),
            Err(_) => None,
        };
        Ok(Discovery {
            issuer,
            jwks_uri,
            token_endpoint,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_maskinporten_metadata() {
        let doc = br#"{"issuer":"https://test.maskinporten.no/","token_endpoint":"https://test.maskinporten.no/token","jwks_uri":"https://test.maskinporten.no/jwk","grant_types_supported":["urn:ietf:params:oauth:grant-type:jwt-bearer"]}"#;
        let d = Discovery::parse(doc).unwrap();
        assert_eq!(d.issuer, "https://test.maskinporten.no/");
        assert_eq!(d.jwks_uri.as_str(), "https://test.maskinporten.no/jwk");
        assert!(d.token_endpoint.is_some());
    }

    #[test]
    fn refuses_incomplete_or_insecure_documents() {
        assert_eq!(
            Discovery::parse(br#"{"jwks_uri":"https://a/jwk"}"#),
            Err(DiscoveryError::Missing("issuer"))
        );
        assert_eq!(
            Discovery::parse(br#"{"issuer":"https://a/"}"#),
            Err(DiscoveryError::Missing("jwks_uri"))
        );
        assert!(matches!(
            Discovery::parse(br#"{"issuer":"https://a/","jwks_uri":"http://evil.example/jwk"}"#),
            Err(DiscoveryError::BadUrl(_))
        ));
        assert!(matches!(
            Discovery::parse(b"<html>"),
            Err(DiscoveryError::NotJson(_))
        ));
    }
}
