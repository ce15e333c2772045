//! Reads the Maskinporten part of a NAIS `Application` manifest, checks it, and turns it into
//! the scope and grant table that portvakt's local issuer enforces and its validator checks
//! against.
//!
//! Steps 1 and 2 of securing an API with Maskinporten (declare the scopes, grant them to
//! organizations) happen in the application's `nais.yaml`. Mistakes there surface only when
//! provisioning fails in the cluster, or worse, when a mistyped organization number quietly
//! grants a stranger. This crate reads the same file, reports every problem at its line and
//! column with the rule it breaks and, where possible, the fix, and hands the result to the
//! issuer as a [`GrantsTable`].
//!
//! ```
//! use portvakt_manifest::Manifest;
//!
//! let manifest = Manifest::parse(
//!     r#"
//! spec:
//!   maskinporten:
//!     enabled: true
//!     scopes:
//!       exposes:
//!         - name: "some.scope.read"
//!           enabled: true
//!           product: "arbeid"
//!           consumers:
//!             - orgno: "889640782"
//! "#,
//!     "nais.yaml",
//! );
//! assert!(!manifest.has_errors());
//! let grants = manifest.grants();
//! assert!(grants.check("889640782", "nav:arbeid:some.scope.read").is_ok());
//! assert_eq!(
//!     grants.check("974761076", "nav:arbeid:some.scope.read").unwrap_err().to_string(),
//!     "organization 974761076 is not a consumer of scope \"nav:arbeid:some.scope.read\""
//! );
//! ```

#![forbid(unsafe_code)]

mod diagnostic;
mod grants;
mod model;
mod orgno;
pub mod render;
mod rules;
pub mod scope_name;
mod yaml;

use std::path::{Path, PathBuf};

pub use diagnostic::{Code, Diagnostic, Severity};
pub use grants::{GrantError, GrantsTable, ScopeGrant};
pub use model::{
    Application, Consumer, DelegationSource, ExposedScope, Integration, Maskinporten, Visibility,
};
pub use orgno::{is_nine_digits, orgno_check_digit_ok};

/// Largest manifest [`Manifest::from_path`] reads. Real manifests are a few kilobytes.
pub const MAX_FILE_SIZE: u64 = 16 * 1024 * 1024;

/// How to check a manifest and name its scopes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckOptions {
    /// Turn every warning into an error (`--strict`), e.g. for CI.
    pub strict: bool,
    /// The organization prefix of fully qualified scopes: `nav` at NAV, where NAIS runs.
    pub prefix: String,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            strict: false,
            prefix: "nav".to_owned(),
        }
    }
}

/// Why a manifest file could not be read at all. Problems with its content are not errors of
/// this kind but [`Diagnostic`]s.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The file could not be opened or read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The path as given.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The file is larger than [`MAX_FILE_SIZE`].
    #[error("{} is {size} bytes or more; a NAIS manifest is at most {MAX_FILE_SIZE} bytes", path.display())]
    TooLarge {
        /// The path as given.
        path: PathBuf,
        /// Its size in bytes, or, for a pipe or device whose size is not known in advance,
        /// how much was read before giving up (`MAX_FILE_SIZE + 1`).
        size: u64,
    },
}

/// A checked manifest file: its NAIS applications and everything found wrong with them.
///
/// Parsing never fails on content: syntax errors, wrong types and broken rules all become
/// [`Diagnostic`]s, so that one run reports every problem. A file may hold several YAML
/// documents; every `nais.io/v1alpha1` `Application` among them is read (other kinds are
/// ignored), and so is a bare `spec:` fragment as the NAIS guide shows it.
#[derive(Debug, Clone)]
pub struct Manifest {
    file: String,
    applications: Vec<Application>,
    diagnostics: Vec<Diagnostic>,
    options: CheckOptions,
}

impl Manifest {
    /// Checks `source` with default [`CheckOptions`]. `file_name` is used in diagnostics.
    pub fn parse(source: &str, file_name: &str) -> Manifest {
        Manifest::parse_with(source, file_name, &CheckOptions::default())
    }

    /// Checks `source` with `options`. `file_name` is used in diagnostics.
    pub fn parse_with(source: &str, file_name: &str, options: &CheckOptions) -> Manifest {
        // A UTF-8 byte-order mark is not content: go-yaml skips it, and editors do not count
        // it as a column. Left in, the YAML parser would read it as part of the first key.
        let source = source.strip_prefix('\u{feff}').unwrap_or(source);
        let checked = rules::check(source, file_name, options.strict);
        Manifest {
            file: file_name.to_owned(),
            applications: checked.apps,
            diagnostics: checked.diagnostics,
            options: options.clone(),
        }
    }

    /// Reads and checks the file at `path` with default [`CheckOptions`].
    ///
    /// # Errors
    /// [`ReadError`] when the file cannot be read; content problems are diagnostics.
    pub fn from_path(path: impl AsRef<Path>) -> Result<Manifest, ReadError> {
        Manifest::from_path_with(path, &CheckOptions::default())
    }

    /// Reads and checks the file at `path` with `options`.
    ///
    /// # Errors
    /// [`ReadError`] when the file cannot be read; content problems, invalid UTF-8 included,
    /// are diagnostics.
    pub fn from_path_with(
        path: impl AsRef<Path>,
        options: &CheckOptions,
    ) -> Result<Manifest, ReadError> {
        let path = path.as_ref();
        let io = |source| ReadError::Io {
            path: path.to_owned(),
            source,
        };
        let too_large = |size| ReadError::TooLarge {
            path: path.to_owned(),
            size,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        // The reported size refuses a large regular file without reading it; pipes, devices
        // and `/dev/stdin` report 0 (or a size that may change), so the read itself is bounded.
        let size = file.metadata().map_err(io)?.len();
        if size > MAX_FILE_SIZE {
            return Err(too_large(size));
        }
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(
            &mut std::io::Read::take(file, MAX_FILE_SIZE + 1),
            &mut bytes,
        )
        .map_err(io)?;
        let read = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        if read > MAX_FILE_SIZE {
            return Err(too_large(read));
        }
        let file_name = path.display().to_string();
        Ok(Manifest::from_bytes(&bytes, &file_name, options))
    }

    /// Checks raw file content: like [`Manifest::parse_with`], but content that is not UTF-8 is
    /// reported as an `invalid-encoding` error at the first bad byte.
    pub fn from_bytes(bytes: &[u8], file_name: &str, options: &CheckOptions) -> Manifest {
        // As in `parse_with`: a byte-order mark is not a column.
        let bytes = bytes.strip_prefix("\u{feff}".as_bytes()).unwrap_or(bytes);
        match std::str::from_utf8(bytes) {
            Ok(source) => Manifest::parse_with(source, file_name, options),
            Err(e) => {
                let good = String::from_utf8_lossy(&bytes[..e.valid_up_to()]);
                let yaml::Pos { line, column } = yaml::position_after(&good);
                Manifest {
                    file: file_name.to_owned(),
                    applications: Vec::new(),
                    diagnostics: vec![Diagnostic {
                        severity: Severity::Error,
                        file: file_name.to_owned(),
                        line,
                        column,
                        code: Code::InvalidEncoding,
                        message: "the file is not valid UTF-8".to_owned(),
                        value: None,
                        suggestion: None,
                        help: Some("save the manifest as UTF-8".to_owned()),
                    }],
                    options: options.clone(),
                }
            }
        }
    }

    /// The file name diagnostics use.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The options the manifest was checked with.
    pub fn options(&self) -> &CheckOptions {
        &self.options
    }

    /// Errors and warnings, ordered by position.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        &self.diagnostics
    }

    /// Whether any diagnostic is an error (with `strict`, whether there is any diagnostic).
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    /// The NAIS applications in the file, in order.
    pub fn applications(&self) -> &[Application] {
        &self.applications
    }

    /// The scopes the file's applications request as consumers
    /// (`spec.maskinporten.scopes.consumes[].name`), without repeats, in file order.
    pub fn consumes(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for mp in self
            .applications
            .iter()
            .filter_map(|a| a.maskinporten.as_ref())
        {
            for c in &mp.consumes {
                if !out.contains(&c.as_str()) {
                    out.push(c);
                }
            }
        }
        out
    }

    /// The scope and grant table, named with this manifest's prefix. See [`GrantsTable`].
    pub fn grants(&self) -> GrantsTable {
        GrantsTable::from_manifest(self, &self.options)
    }
}
