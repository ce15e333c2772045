//! A local Digdir: the admin API Maskinporten's scopes are provisioned through, served by the
//! issuer under `/api/v1/`, and the state it issues consumer tokens from.

mod routes;
mod state;

use std::sync::{MutexGuard, PoisonError};

pub use state::{ALTINN, DigdirState};

pub(crate) use routes::router;

use crate::error::IssuerError;
use crate::issuer::Issuer;

/// The scopes an admin token may carry; a token request with one of them is for the admin API.
pub const ADMIN_SCOPES: [&str; 2] = [
    portvakt_provision::types::SCOPES_READ,
    portvakt_provision::types::SCOPES_WRITE,
];

impl Issuer {
    /// Reads the local Digdir's state.
    pub fn digdir<T>(&self, read: impl FnOnce(&DigdirState) -> T) -> T {
        read(&self.digdir_lock())
    }

    pub(crate) fn digdir_lock(&self) -> MutexGuard<'_, DigdirState> {
        self.state
            .digdir
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes the state file, if there is one.
    pub(crate) fn persist(&self, state: &DigdirState) -> Result<(), IssuerError> {
        match &self.state.state_file {
            Some(path) => state.save(path),
            None => Ok(()),
        }
    }

    /// The organization that owns the local Digdir's scopes.
    pub fn owner_orgno(&self) -> &str {
        &self.state.owner_orgno
    }

    /// The issuer URL of Altinn's delegation source (`GET /api/v1/delegationsources`).
    pub fn altinn_delegation_source(&self) -> &str {
        &self.state.altinn_delegation_source
    }
}
