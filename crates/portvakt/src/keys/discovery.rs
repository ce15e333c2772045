//! Authorization server metadata: RFC 8414 (`/.well-known/oauth-authorization-server`, what
//! Maskinporten publishes) and OpenID Connect discovery (`/.well-known/openid-configuration`).
//! Both carry `issuer` and `jwks_uri`, which is all validation needs.
//!
//! The document's `issuer` becomes the value every token's `iss` is compared with, so it is
//! held to the same rules as a configured issuer (https, or http to a loopback host), and,
//! per RFC 8414 section 3.3, it must be the issuer whose well-known URL the document was
//! fetched from: a document at one address cannot vouch for another issuer.

use url::Url;

use crate::config::{ENV_WELL_KNOWN_URL, checked_url};
use crate::encoding::parse_json_object;

/// The well-known path suffixes portvakt reads: RFC 8414's, then OpenID Connect's.
const WELL_KNOWN_SUFFIXES: [&str; 2] = [
    ".well-known/oauth-authorization-server",
    ".well-known/openid-configuration",
];

/// The parts of a discovery document portvakt uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovery {
    /// `issuer`: compared exactly with every token's `iss`. An https URL (or http to a
    /// loopback host) without query or fragment.
    pub issuer: String,
    /// `jwks_uri`: where the signing keys are. Optional here because a configured JWKS URI
    /// (`MASKINPORTEN_JWKS_URI`) overrides it and token clients do not need it; the validator
    /// requires it when nothing overrides it.
    pub jwks_uri: Option<Url>,
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
    /// The document names an issuer whose well-known URL is not the one it was fetched from
    /// (RFC 8414 section 3.3).
    #[error(
        "the discovery document at {well_known} names the issuer {issuer:?}, but that issuer's metadata is not at this address (RFC 8414 section 3.3: expected {expected}); set {ENV_WELL_KNOWN_URL} to the issuer's own document"
    )]
    NotFromIssuer {
        /// The `issuer` the document names.
        issuer: String,
        /// Where it was fetched from.
        well_known: String,
        /// Where that issuer's document would be.
        expected: String,
    },
}

impl Discovery {
    /// Parses a discovery document: `issuer` is required and must be an https URL (or http to
    /// a loopback host) without query or fragment; `jwks_uri` and `token_endpoint`, when
    /// present, must be too. Use [`check_location`](Self::check_location) as well when the
    /// URL it was fetched from is known.
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
        let optional_url = |name: &'static str| match string(name) {
            Ok(url) => checked_url(name, url)
                .map(Some)
                .map_err(|e| DiscoveryError::BadUrl(e.to_string())),
            Err(_) => Ok(None),
        };
        let issuer = string("issuer")?.to_owned();
        let parsed =
            checked_url("issuer", &issuer).map_err(|e| DiscoveryError::BadUrl(e.to_string()))?;
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(DiscoveryError::BadUrl(format!(
                "issuer {issuer:?} has a query or fragment, which RFC 8414 forbids"
            )));
        }
        Ok(Discovery {
            issuer,
            jwks_uri: optional_url("jwks_uri")?,
            token_endpoint: optional_url("token_endpoint")?,
        })
    }

    /// Parses a document fetched from `well_known` and checks that its issuer is the one
    /// that URL belongs to ([`check_location`](Self::check_location)).
    pub fn parse_from(document: &[u8], well_known: &Url) -> Result<Discovery, DiscoveryError> {
        let discovery = Discovery::parse(document)?;
        discovery.check_location(well_known)?;
        Ok(discovery)
    }

    /// RFC 8414 section 3.3: the `issuer` in the document must be the one whose well-known
    /// URL it was fetched from. Accepted forms, for both the RFC 8414 and the OpenID Connect
    /// suffix: the suffix appended to the issuer (Maskinporten's:
    /// `https://test.maskinporten.no/` + `.well-known/oauth-authorization-server`, with or
    /// without the issuer's trailing slash), and RFC 8414's form for an issuer with a path,
    /// the suffix inserted between host and path.
    pub fn check_location(&self, well_known: &Url) -> Result<(), DiscoveryError> {
        let candidates = well_known_candidates(&self.issuer);
        if candidates.iter().any(|candidate| candidate == well_known) {
            return Ok(());
        }
        Err(DiscoveryError::NotFromIssuer {
            issuer: self.issuer.clone(),
            well_known: well_known.to_string(),
            expected: candidates
                .first()
                .map_or_else(|| "a URL below the issuer".to_owned(), Url::to_string),
        })
    }
}

/// Where an issuer's metadata may be, most likely first.
fn well_known_candidates(issuer: &str) -> Vec<Url> {
    let mut candidates = Vec::new();
    let base = issuer.strip_suffix('/').unwrap_or(issuer);
    for suffix in WELL_KNOWN_SUFFIXES {
        if let Ok(url) = Url::parse(&format!("{base}/{suffix}")) {
            candidates.push(url);
        }
    }
    if let Ok(parsed) = Url::parse(issuer) {
        let path = parsed.path().trim_end_matches('/');
        if !path.is_empty() {
            for suffix in WELL_KNOWN_SUFFIXES {
                let mut url = parsed.clone();
                url.set_path(&format!("/{suffix}{path}"));
                candidates.push(url);
            }
        }
    }
    candidates
}

#[cfg(test)]
mod tests {
    use super::*;

    const MASKINPORTEN: &[u8] = br#"{"issuer":"https://test.maskinporten.no/","token_endpoint":"https://test.maskinporten.no/token","jwks_uri":"https://test.maskinporten.no/jwk","grant_types_supported":["urn:ietf:params:oauth:grant-type:jwt-bearer"]}"#;

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    #[test]
    fn parses_maskinporten_metadata() {
        let d = Discovery::parse_from(
            MASKINPORTEN,
            &url("https://test.maskinporten.no/.well-known/oauth-authorization-server"),
        )
        .unwrap();
        assert_eq!(d.issuer, "https://test.maskinporten.no/");
        assert_eq!(
            d.jwks_uri.as_ref().map(Url::as_str),
            Some("https://test.maskinporten.no/jwk")
        );
        assert!(d.token_endpoint.is_some());
    }

    #[test]
    fn refuses_incomplete_or_insecure_documents() {
        assert_eq!(
            Discovery::parse(br#"{"jwks_uri":"https://a/jwk"}"#),
            Err(DiscoveryError::Missing("issuer"))
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

    #[test]
    fn jwks_uri_is_optional_in_the_document() {
        let d = Discovery::parse(br#"{"issuer":"https://a/"}"#).unwrap();
        assert_eq!(d.jwks_uri, None);
    }

    #[test]
    fn the_issuer_obeys_the_https_rule_too() {
        for (issuer, why) in [
            ("http://evil.example/", "must use https"),
            ("not a url", "not a valid URL"),
            ("ftp://a/", "not https"),
            ("https://a/?tenant=x", "query or fragment"),
            ("https://a/#x", "query or fragment"),
        ] {
            let doc = format!(r#"{{"issuer":"{issuer}","jwks_uri":"https://a/jwk"}}"#);
            match Discovery::parse(doc.as_bytes()) {
                Err(DiscoveryError::BadUrl(reason)) => {
                    assert!(reason.contains(why), "{issuer}: {reason}")
                }
                other => panic!("{issuer}: {other:?}"),
            }
        }
        assert!(Discovery::parse(br#"{"issuer":"http://127.0.0.1:7166/"}"#).is_ok());
    }

    #[test]
    fn the_document_must_come_from_below_its_issuer() {
        let d = Discovery::parse(MASKINPORTEN).unwrap();
        for ok in [
            "https://test.maskinporten.no/.well-known/oauth-authorization-server",
            "https://test.maskinporten.no/.well-known/openid-configuration",
            "https://TEST.maskinporten.no:443/.well-known/oauth-authorization-server",
        ] {
            assert_eq!(d.check_location(&url(ok)), Ok(()), "{ok}");
        }
        for bad in [
            "https://maskinporten.no/.well-known/oauth-authorization-server",
            "https://test.maskinporten.no/other/.well-known/oauth-authorization-server",
            "https://test.maskinporten.no/.well-known/oauth-authorization-server/x",
            "http://127.0.0.1:1/.well-known/oauth-authorization-server",
            "https://test.maskinporten.no:8443/.well-known/oauth-authorization-server",
        ] {
            let err = d.check_location(&url(bad)).unwrap_err();
            assert!(matches!(err, DiscoveryError::NotFromIssuer { .. }), "{bad}");
            let text = err.to_string();
            assert!(text.contains(ENV_WELL_KNOWN_URL), "{text}");
            assert!(
                text.contains(
                    "expected https://test.maskinporten.no/.well-known/oauth-authorization-server"
                ),
                "{text}"
            );
        }
    }

    #[test]
    fn issuers_with_a_path_and_no_trailing_slash() {
        let d = Discovery::parse(br#"{"issuer":"https://idp.example/tenant/a"}"#).unwrap();
        for ok in [
            // Appended (OpenID Connect, and what many servers do for RFC 8414 too).
            "https://idp.example/tenant/a/.well-known/openid-configuration",
            "https://idp.example/tenant/a/.well-known/oauth-authorization-server",
            // Inserted between host and path (RFC 8414 section 3.1).
            "https://idp.example/.well-known/oauth-authorization-server/tenant/a",
            "https://idp.example/.well-known/openid-configuration/tenant/a",
        ] {
            assert_eq!(d.check_location(&url(ok)), Ok(()), "{ok}");
        }
        assert!(
            d.check_location(&url(
                "https://idp.example/tenant/b/.well-known/openid-configuration"
            ))
            .is_err()
        );
        let bare = Discovery::parse(br#"{"issuer":"https://test.maskinporten.no"}"#).unwrap();
        assert_eq!(
            bare.check_location(&url(
                "https://test.maskinporten.no/.well-known/oauth-authorization-server"
            )),
            Ok(())
        );
    }
}
