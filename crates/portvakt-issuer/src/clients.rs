//! Registered clients: a `client_id`, the organization it belongs to, its public keys.
//!
//! Maskinporten knows every client in advance (NAIS registers them through Digdirator). The
//! local issuer reads them from a JSON file, from `CLIENT_ID:ORGNO:PATH` registrations on the
//! command line, or from code.
//!
//! The file is a JSON array:
//!
//! ```json
//! [
//!   {"client_id": "my-client", "orgno": "889640782", "jwks": {"keys": [{"kty": "RSA", ...}]}},
//!   {"client_id": "other", "orgno": "974761076", "jwk": {"kty": "RSA", ...}}
//! ]
//! ```
//!
//! A private JWK is accepted where a public one is expected and reduced to its public part
//! (`kty`, `kid`, `use`, `alg`, `n`, `e`), so the file `portvakt issuer generate-client` writes
//! for the consumer can be registered as is.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use portvakt::{Algorithm, KeySet, SigningKey};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::error::ClientError;

/// The algorithms Maskinporten accepts for client assertions.
pub const ASSERTION_ALGORITHMS: [Algorithm; 3] =
    [Algorithm::RS256, Algorithm::RS384, Algorithm::RS512];

/// Largest client registration file read.
const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// A client the issuer knows: who it is, whose it is, and the keys its assertions are
/// verified with.
pub struct RegisteredClient {
    client_id: String,
    orgno: String,
    keys: KeySet,
    public_jwks: Vec<Value>,
}

impl fmt::Debug for RegisteredClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegisteredClient")
            .field("client_id", &self.client_id)
            .field("orgno", &self.orgno)
            .field("kids", &self.keys.kids())
            .finish()
    }
}

impl RegisteredClient {
    /// The client's id: the `iss` of its assertions and the `client_id` of its tokens.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The organization the client belongs to (nine digits).
    pub fn orgno(&self) -> &str {
        &self.orgno
    }

    /// The vetted public keys.
    pub fn keys(&self) -> &KeySet {
        &self.keys
    }

    /// The public JWKs as registered (private members removed).
    pub fn public_jwks(&self) -> &[Value] {
        &self.public_jwks
    }
}

/// The clients an issuer accepts assertions from, by `client_id`. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct ClientRegistry {
    clients: BTreeMap<String, Arc<RegisteredClient>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileEntry {
    client_id: String,
    orgno: String,
    #[serde(default)]
    jwk: Option<Value>,
    #[serde(default)]
    jwks: Option<JwksDocument>,
}

#[derive(Deserialize)]
struct JwksDocument {
    keys: Vec<Value>,
}

impl ClientRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        ClientRegistry::default()
    }

    /// Registers a client with its public JWKs (private JWKs are reduced to their public
    /// part). Keys that fail vetting are reported; at least one must be usable.
    pub fn register<'a>(
        &mut self,
        client_id: &str,
        orgno: &str,
        jwks: impl IntoIterator<Item = &'a Value>,
    ) -> Result<&RegisteredClient, ClientError> {
        if client_id.is_empty()
            || client_id.len() > 200
            || client_id
                .chars()
                .any(|c| c.is_control() || c.is_whitespace())
        {
            return Err(ClientError::InvalidClientId(client_id.to_owned()));
        }
        if !portvakt_manifest::is_nine_digits(orgno) {
            return Err(ClientError::InvalidOrgno {
                client_id: client_id.to_owned(),
                orgno: orgno.to_owned(),
            });
        }
        if !portvakt_manifest::orgno_check_digit_ok(orgno) {
            tracing::warn!(
                client_id,
                orgno,
                "organization number fails its check digit; registered anyway for development"
            );
        }
        if self.clients.contains_key(client_id) {
            return Err(ClientError::Duplicate(client_id.to_owned()));
        }
        let public_jwks: Vec<Value> = jwks.into_iter().map(public_part).collect();
        let (keys, warnings) = KeySet::from_jwks_values(&public_jwks, &ASSERTION_ALGORITHMS);
        if keys.is_empty() {
            let reason = if warnings.is_empty() {
                "no key was given".to_owned()
            } else {
                warnings
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            };
            return Err(ClientError::NoUsableKey {
                client_id: client_id.to_owned(),
                reason,
            });
        }
        for warning in &warnings {
            tracing::warn!(client_id, "{warning}");
        }
        let client = Arc::new(RegisteredClient {
            client_id: client_id.to_owned(),
            orgno: orgno.to_owned(),
            keys,
            public_jwks,
        });
        Ok(self.clients.entry(client_id.to_owned()).or_insert(client))
    }

    /// Registers a client whose key is `key` (its public part). Handy in tests and for
    /// development clients made with [`generate_client_key`].
    pub fn register_key(
        &mut self,
        client_id: &str,
        orgno: &str,
        key: &SigningKey,
    ) -> Result<&RegisteredClient, ClientError> {
        self.register(client_id, orgno, [&key.public_jwk()])
    }

    /// Reads a registration file (see the module documentation) into this registry.
    pub fn load_file(&mut self, path: impl AsRef<Path>) -> Result<usize, ClientError> {
        let path = path.as_ref();
        let text = read_small(path)?;
        let entries: Vec<FileEntry> =
            serde_json::from_str(&text).map_err(|e| ClientError::BadFile {
                path: path.to_owned(),
                reason: format!(
                    "expected a JSON array of {{\"client_id\", \"orgno\", \"jwks\" or \"jwk\"}}: {e}"
                ),
            })?;
        let count = entries.len();
        for entry in entries {
            let mut keys: Vec<Value> = Vec::new();
            if let Some(jwk) = entry.jwk {
                keys.push(jwk);
            }
            if let Some(jwks) = entry.jwks {
                keys.extend(jwks.keys);
            }
            self.register(&entry.client_id, &entry.orgno, &keys)?;
        }
        Ok(count)
    }

    /// Registers `CLIENT_ID:ORGNO:PATH`, where the file at PATH holds a JWK (public or
    /// private) or a JWKS `{"keys": [...]}`. PATH may itself contain `:`.
    pub fn add_spec(&mut self, spec: &str) -> Result<&RegisteredClient, ClientError> {
        let bad = |reason: &str| ClientError::BadSpec {
            spec: spec.to_owned(),
            reason: reason.to_owned(),
        };
        let mut parts = spec.splitn(3, ':');
        let (Some(client_id), Some(orgno), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad(
                "expected CLIENT_ID:ORGNO:PATH_TO_JWK, e.g. my-client:889640782:client.jwk",
            ));
        };
        if path.is_empty() {
            return Err(bad("the path to the JWK is empty"));
        }
        let path = Path::new(path);
        let text = read_small(path)?;
        let value: Value = serde_json::from_str(&text).map_err(|e| ClientError::BadFile {
            path: path.to_owned(),
            reason: format!("not JSON: {e}"),
        })?;
        let keys: Vec<Value> = match value {
            Value::Object(ref object) if object.contains_key("keys") => match object.get("keys") {
                Some(Value::Array(keys)) => keys.clone(),
                _ => {
                    return Err(ClientError::BadFile {
                        path: path.to_owned(),
                        reason: "`keys` is not an array".to_owned(),
                    });
                }
            },
            Value::Object(_) => vec![value],
            _ => {
                return Err(ClientError::BadFile {
                    path: path.to_owned(),
                    reason: "expected a JWK or a JWKS object".to_owned(),
                });
            }
        };
        self.register(client_id, orgno, &keys)
    }

    /// The client with this id.
    pub fn get(&self, client_id: &str) -> Option<&Arc<RegisteredClient>> {
        self.clients.get(client_id)
    }

    /// The first client (by id) of organization `orgno`.
    pub fn find_by_orgno(&self, orgno: &str) -> Option<&Arc<RegisteredClient>> {
        self.clients.values().find(|c| c.orgno == orgno)
    }

    /// All clients, by id.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<RegisteredClient>> {
        self.clients.values()
    }

    /// How many clients are registered.
    pub fn len(&self) -> usize {
        self.clients.len()
    }

    /// Whether no client is registered.
    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }
}

fn read_small(path: &Path) -> Result<String, ClientError> {
    let io = |source| ClientError::Io {
        path: path.to_owned(),
        source,
    };
    let size = std::fs::metadata(path).map_err(io)?.len();
    if size > MAX_FILE_BYTES {
        return Err(ClientError::BadFile {
            path: path.to_owned(),
            reason: format!("{size} bytes is too large for a key file"),
        });
    }
    std::fs::read_to_string(path).map_err(io)
}

/// A private RSA JWK reduced to its public members; anything else is returned unchanged (and
/// vetted as it is).
fn public_part(jwk: &Value) -> Value {
    match jwk.as_object() {
        Some(object) if object.contains_key("d") => {
            let public: Map<String, Value> = object
                .iter()
                .filter(|(name, _)| {
                    matches!(name.as_str(), "kty" | "kid" | "use" | "alg" | "n" | "e")
                })
                .map(|(name, value)| (name.clone(), value.clone()))
                .collect();
            Value::Object(public)
        }
        _ => jwk.clone(),
    }
}

/// Generates a 2048-bit RSA key for a development client, with a `kid` derived from the
/// client id and the time. Its [`SigningKey::private_jwk`] is what NAIS would inject as
/// `MASKINPORTEN_CLIENT_JWK`; register its public part with [`ClientRegistry::register_key`].
pub fn generate_client_key(client_id: &str) -> Result<SigningKey, portvakt::SigningError> {
    SigningKey::generate(crate::keys::new_kid(client_id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::LazyLock;

    static KEY: LazyLock<SigningKey> = LazyLock::new(|| SigningKey::generate("k1").unwrap());

    #[test]
    fn registers_public_and_private_jwks() {
        let mut registry = ClientRegistry::new();
        registry.register_key("a", "889640782", &KEY).unwrap();
        let private = KEY.private_jwk().unwrap();
        let client = registry.register("b", "889640782", [&private]).unwrap();
        assert!(client.public_jwks()[0].get("d").is_none());
        assert_eq!(client.keys().kids(), vec!["k1"]);
        assert_eq!(registry.len(), 2);
        assert_eq!(
            registry.find_by_orgno("889640782").unwrap().client_id(),
            "a"
        );
    }

    #[test]
    fn refuses_bad_registrations() {
        let mut registry = ClientRegistry::new();
        let public = KEY.public_jwk();
        assert!(matches!(
            registry.register("", "889640782", [&public]),
            Err(ClientError::InvalidClientId(_))
        ));
        assert!(matches!(
            registry.register("a", "88964078", [&public]),
            Err(ClientError::InvalidOrgno { .. })
        ));
        let err = registry
            .register("a", "889640782", [&json!({"kty": "EC", "kid": "x"})])
            .unwrap_err();
        assert!(err.to_string().contains("key type `EC`"), "{err}");
        registry.register("a", "889640782", [&public]).unwrap();
        assert!(matches!(
            registry.register("a", "889640782", [&public]),
            Err(ClientError::Duplicate(_))
        ));
        assert!(matches!(
            registry.add_spec("a:889640782"),
            Err(ClientError::BadSpec { .. })
        ));
    }

    #[test]
    fn reads_files_and_specs() {
        let dir =
            std::env::temp_dir().join(format!("portvakt-issuer-clients-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("clients.json");
        let doc = json!([
            {"client_id": "one", "orgno": "889640782", "jwks": {"keys": [KEY.public_jwk()]}},
            {"client_id": "two", "orgno": "974761076", "jwk": KEY.private_jwk().unwrap()},
        ]);
        std::fs::write(&file, doc.to_string()).unwrap();
        let mut registry = ClientRegistry::new();
        assert_eq!(registry.load_file(&file).unwrap(), 2);
        let jwk = dir.join("c.jwk");
        std::fs::write(&jwk, KEY.private_jwk().unwrap().to_string()).unwrap();
        let spec = format!("three:889640782:{}", jwk.display());
        assert_eq!(registry.add_spec(&spec).unwrap().orgno(), "889640782");
        std::fs::write(
            &file,
            r#"[{"client_id": "x", "orgno": "889640782", "extra": 1}]"#,
        )
        .unwrap();
        let err = ClientRegistry::new().load_file(&file).unwrap_err();
        assert!(err.to_string().contains("extra"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
