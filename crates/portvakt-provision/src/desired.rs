//! The desired state: what a checked manifest says should exist at Digdir, mapped the way NAIS's
//! digdirator maps `spec.maskinporten.scopes.exposes[]`.

use portvakt_manifest::{DelegationSource, Manifest};

use crate::error::ProvisionError;
use crate::types::{MASKINPORTEN_INTEGRATION, SELF_CONTAINED, ScopeRegistration, visibility};

/// `at_max_age` when the manifest gives none (NAIS's default).
pub const DEFAULT_AT_MAX_AGE: u32 = 30;

/// How scopes are named and whose they are: the organization prefix, and the cluster that,
/// with the manifest's namespace and application name, makes the owner description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Naming {
    /// The organization prefix, e.g. `nav`.
    pub prefix: String,
    /// The NAIS cluster, e.g. `dev-gcp` (`NAIS_CLUSTER_NAME`).
    pub cluster: String,
}

/// The application a scope belongs to: what the description `<product> - <cluster>:<namespace>:<app>`
/// records.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Owner {
    /// NAIS cluster.
    pub cluster: String,
    /// `metadata.namespace`.
    pub namespace: String,
    /// `metadata.name`.
    pub app: String,
}

impl Owner {
    /// The NAIS description of a scope of `product` owned by this application.
    pub fn description(&self, product: &str) -> String {
        format!(
            "{product} - {}:{}:{}",
            self.cluster, self.namespace, self.app
        )
    }

    /// Reads a NAIS description back; `None` when it is not NAIS-style (made by hand).
    pub fn from_description(description: &str) -> Option<Owner> {
        let (product, rest) = description.split_once(" - ")?;
        let mut parts = rest.split(':');
        let (Some(cluster), Some(namespace), Some(app), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        let word = |s: &str| !s.is_empty() && !s.contains(char::is_whitespace);
        (word(product) && word(cluster) && word(namespace) && word(app)).then(|| Owner {
            cluster: cluster.to_owned(),
            namespace: namespace.to_owned(),
            app: app.to_owned(),
        })
    }
}

/// Why `value` cannot be one part of a description's `<cluster>:<namespace>:<app>`, which
/// [`Owner::from_description`] must read back: `None` when it can.
fn not_a_description_word(value: &str) -> Option<&'static str> {
    if value.is_empty() {
        Some("is empty")
    } else if value.contains(char::is_whitespace) {
        Some("has whitespace")
    } else if value.contains(':') {
        Some("has a `:`")
    } else {
        None
    }
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.cluster, self.namespace, self.app)
    }
}

/// One scope as the manifest wants it.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredScope {
    /// The registration to create or to update towards; `delegation_source` still holds the
    /// manifest's name (`altinn`) until [`crate::resolve_delegation_sources`] swaps in the issuer URL.
    pub registration: ScopeRegistration,
    /// The application exposing it.
    pub owner: Owner,
    /// `consumers[].orgno`, in manifest order.
    pub consumers: Vec<String>,
}

impl DesiredScope {
    /// The fully qualified name.
    pub fn name(&self) -> String {
        self.registration.full_name()
    }
}

/// What a manifest wants at Digdir.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Desired {
    /// The exposed scopes, in file order.
    pub scopes: Vec<DesiredScope>,
    /// Every named application in the file, exposing scopes or not: a scope whose description
    /// names one of them and that is not in `scopes` is an orphan.
    pub owners: Vec<Owner>,
}

/// The scopes a checked manifest exposes, in file order, and the applications it holds.
///
/// # Errors
/// [`ProvisionError::Manifest`] when the manifest has errors (nothing is provisioned from a
/// broken manifest) or an application exposing scopes has no `metadata.name` or
/// `metadata.namespace` (they name the scope's owner), or one that is empty or holds
/// whitespace or a `:`; [`ProvisionError::Config`] for such a cluster name. The description
/// `<product> - <cluster>:<namespace>:<app>` must read back as its owner
/// ([`Owner::from_description`]), or every later run would take the scopes for another's.
pub fn desired(manifest: &Manifest, naming: &Naming) -> Result<Desired, ProvisionError> {
    if manifest.has_errors() {
        let count = manifest
            .diagnostics()
            .iter()
            .filter(|d| d.is_error())
            .count();
        return Err(ProvisionError::Manifest(format!(
            "{} has {count} error(s); run `portvakt manifest check {}` and fix them first",
            manifest.file(),
            manifest.file()
        )));
    }
    if !portvakt_manifest::scope_name::is_valid_prefix(&naming.prefix) {
        return Err(ProvisionError::Config(format!(
            "scope prefix {:?} is not one: use the organization's prefix at Digdir, lowercase letters and digits only (e.g. nav)",
            naming.prefix
        )));
    }
    if let Some(why) = not_a_description_word(&naming.cluster) {
        return Err(ProvisionError::Config(format!(
            "cluster {:?} {why}; it goes into every scope's description (\"<product> - <cluster>:<namespace>:<app>\"), and a description that cannot be read back makes the scopes look made by hand: set --cluster or NAIS_CLUSTER_NAME to the NAIS cluster's name, e.g. dev-gcp",
            naming.cluster
        )));
    }
    let mut out: Vec<DesiredScope> = Vec::new();
    let mut owners: Vec<Owner> = Vec::new();
    for app in manifest.applications() {
        if let (Some(name), Some(namespace)) = (&app.name, &app.namespace) {
            owners.push(Owner {
                cluster: naming.cluster.clone(),
                namespace: namespace.clone(),
                app: name.clone(),
            });
        }
        let Some(mp) = app.maskinporten.as_ref().filter(|mp| mp.enabled) else {
            continue;
        };
        if mp.exposes.is_empty() {
            continue;
        }
        let (Some(name), Some(namespace)) = (&app.name, &app.namespace) else {
            return Err(ProvisionError::Manifest(format!(
                "{}: the application at line {} exposes scopes but has no metadata.name and metadata.namespace; they name the scopes' owner in Digdir",
                manifest.file(),
                app.line
            )));
        };
        for (field, value) in [("metadata.name", name), ("metadata.namespace", namespace)] {
            if let Some(why) = not_a_description_word(value) {
                return Err(ProvisionError::Manifest(format!(
                    "{}: the application at line {} exposes scopes, and its {field} {value:?} {why}; it names the scopes' owner in their Digdir description: use the name NAIS knows the application by",
                    manifest.file(),
                    app.line
                )));
            }
        }
        let owner = Owner {
            cluster: naming.cluster.clone(),
            namespace: namespace.clone(),
            app: name.clone(),
        };
        for s in &mp.exposes {
            let full = portvakt_manifest::scope_name::fully_qualified(
                &naming.prefix,
                &s.product,
                s.separator,
                &s.name,
            );
            let subscope = full
                .strip_prefix(&format!("{}:", naming.prefix))
                .unwrap_or(&full)
                .to_owned();
            if out.iter().any(|d| d.registration.subscope == subscope) {
                // `duplicate-scope` is a manifest error; unreachable for a checked manifest.
                continue;
            }
            let registration = ScopeRegistration {
                prefix: naming.prefix.clone(),
                subscope,
                description: owner.description(&s.product),
                active: s.enabled,
                allowed_integration_types: s
                    .allowed_integrations
                    .iter()
                    .map(|i| i.as_str().to_owned())
                    .collect(),
                at_max_age: Some(s.at_max_age_seconds),
                token_type: Some(SELF_CONTAINED.to_owned()),
                visibility: Some(visibility(s.visibility).to_owned()),
                accessible_for_all: s.accessible_for_all,
                delegation_source: s.delegation_source.map(|d| match d {
                    DelegationSource::Altinn => d.as_str().to_owned(),
                }),
                ..ScopeRegistration::default()
            };
            out.push(DesiredScope {
                registration,
                owner: owner.clone(),
                consumers: s.consumers.iter().map(|c| c.orgno.clone()).collect(),
            });
        }
    }
    for d in &mut out {
        if d.registration.allowed_integration_types.is_empty() {
            d.registration.allowed_integration_types = vec![MASKINPORTEN_INTEGRATION.to_owned()];
        }
    }
    Ok(Desired {
        scopes: out,
        owners,
    })
}
