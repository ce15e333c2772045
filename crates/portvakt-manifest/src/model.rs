//! The parts of a NAIS `Application` that portvakt reads, after checking.

use std::fmt;

use serde::Serialize;

use crate::scope_name::Separator;

/// One NAIS `Application` document (or a bare `spec:` fragment) from the file.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Application {
    /// `metadata.name`, when present (never for a bare `spec:` fragment).
    pub name: Option<String>,
    /// `metadata.namespace`, when present.
    pub namespace: Option<String>,
    /// 1-based line where the document's root starts; tells documents of one file apart.
    pub line: usize,
    /// `spec.maskinporten`, when present.
    pub maskinporten: Option<Maskinporten>,
}

impl Application {
    /// `namespace/name`, `name`, or `(unnamed application)` for display.
    pub fn display_name(&self) -> String {
        match (&self.namespace, &self.name) {
            (Some(ns), Some(n)) => format!("{ns}/{n}"),
            (None, Some(n)) => n.clone(),
            _ => "(unnamed application)".to_owned(),
        }
    }
}

/// `spec.maskinporten`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Maskinporten {
    /// `enabled`; false when missing or invalid (an error is reported then).
    pub enabled: bool,
    /// `scopes.consumes[].name`: the scopes this application requests as a consumer.
    pub consumes: Vec<String>,
    /// `scopes.exposes[]` entries whose name, product and enabled flag could be read.
    pub exposes: Vec<ExposedScope>,
}

/// One `scopes.exposes[]` entry.
///
/// Fields that were invalid hold their default, and the problem is in the manifest's
/// diagnostics; entries whose name or product were invalid are not here at all.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExposedScope {
    /// `name`, e.g. `some.scope.read`.
    pub name: String,
    /// `product`, e.g. `arbeid`.
    pub product: String,
    /// `separator`, when given explicitly.
    pub separator: Option<Separator>,
    /// `enabled`.
    pub enabled: bool,
    /// `consumers[]` with a valid `orgno` (duplicates removed).
    pub consumers: Vec<Consumer>,
    /// `accessibleForAll`, default false.
    pub accessible_for_all: bool,
    /// `atMaxAge` in seconds, 30..=680, default 30.
    pub at_max_age_seconds: u32,
    /// `allowedIntegrations`, default `[maskinporten]`.
    pub allowed_integrations: Vec<Integration>,
    /// `visibility`, default public.
    pub visibility: Visibility,
    /// `delegationSource`, when given.
    pub delegation_source: Option<DelegationSource>,
    /// 1-based line and column of the `name` value.
    pub line: usize,
    /// See `line`.
    pub column: usize,
}

/// An organization granted a scope.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[non_exhaustive]
pub struct Consumer {
    /// Nine-digit Norwegian organization number.
    pub orgno: String,
    /// Descriptive name, for people reading the manifest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl Consumer {
    /// A consumer with an optional descriptive name.
    pub fn new(orgno: impl Into<String>, name: Option<String>) -> Self {
        Consumer {
            orgno: orgno.into(),
            name,
        }
    }
}

/// An integration type that may use a scope (`allowedIntegrations`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(into = "String")]
pub enum Integration {
    /// `maskinporten`: machine-to-machine clients, what portvakt serves.
    Maskinporten,
    /// `idporten`
    Idporten,
    /// `krr`
    Krr,
    /// `api_klient`
    ApiKlient,
    /// A value Maskinporten does not know. [`Integration::parse`] returns it verbatim; the
    /// manifest checker reports it as an error (`unknown-integration`) and leaves it out of
    /// [`ExposedScope::allowed_integrations`], so a checked manifest never holds it.
    Other(String),
}

impl Integration {
    /// The values Maskinporten knows.
    pub const KNOWN: [&'static str; 4] = ["maskinporten", "idporten", "krr", "api_klient"];

    /// Reads one `allowedIntegrations` entry.
    pub fn parse(s: &str) -> Self {
        match s {
            "maskinporten" => Integration::Maskinporten,
            "idporten" => Integration::Idporten,
            "krr" => Integration::Krr,
            "api_klient" => Integration::ApiKlient,
            other => Integration::Other(other.to_owned()),
        }
    }

    /// The manifest spelling.
    pub fn as_str(&self) -> &str {
        match self {
            Integration::Maskinporten => "maskinporten",
            Integration::Idporten => "idporten",
            Integration::Krr => "krr",
            Integration::ApiKlient => "api_klient",
            Integration::Other(s) => s,
        }
    }
}

impl From<Integration> for String {
    fn from(i: Integration) -> String {
        i.as_str().to_owned()
    }
}

impl fmt::Display for Integration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `visibility`: whether the scope is listed publicly in Maskinporten.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    /// Listed (the default).
    #[default]
    Public,
    /// Not listed; access still follows the consumer list.
    Private,
}

impl Visibility {
    /// The manifest spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Public => "public",
            Visibility::Private => "private",
        }
    }
}

/// `delegationSource`: who may delegate access to the scope. Only Altinn exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DelegationSource {
    /// Delegation through Altinn.
    Altinn,
}

impl DelegationSource {
    /// The manifest spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            DelegationSource::Altinn => "altinn",
        }
    }
}
