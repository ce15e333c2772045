//! `GET /dev/page/grants`: the manifest's scopes against its consumers, each cell decided by
//! [`GrantsTable::check`] (the issuer's own decision), the manifest's diagnostics with their
//! lines, and the settings the other panels need.

use axum::response::Response;
use portvakt_manifest::{Consumer, GrantError, GrantsTable, render};
use serde_json::{Value, json};

use super::{DevPage, State, json};

/// The state of one cell of the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cell {
    /// The organization is on the scope's consumer list.
    Granted,
    /// The scope is accessible for all: every organization gets it.
    AccessibleForAll,
    /// The organization may not have the scope.
    NotGranted,
    /// The scope is disabled: nobody gets it.
    Disabled,
}

impl Cell {
    /// The name the page uses (also its CSS class).
    pub fn as_str(self) -> &'static str {
        match self {
            Cell::Granted => "granted",
            Cell::AccessibleForAll => "all",
            Cell::NotGranted => "not-granted",
            Cell::Disabled => "disabled",
        }
    }
}

/// What the issuer would answer `orgno` asking for `scope`, and why in its words.
pub fn cell(table: &GrantsTable, orgno: &str, scope: &str) -> (Cell, String) {
    match table.check(orgno, scope) {
        Ok(grant) if grant.lists_consumer(orgno) => (
            Cell::Granted,
            format!("organization {orgno} is a consumer of scope \"{scope}\""),
        ),
        Ok(_) => (
            Cell::AccessibleForAll,
            format!("scope \"{scope}\" is accessible for all organizations"),
        ),
        Err(e @ GrantError::ScopeDisabled { .. }) => (Cell::Disabled, e.to_string()),
        Err(e) => (Cell::NotGranted, e.to_string()),
    }
}

/// Every organization named as a consumer, in file order, each once.
fn consumers(table: &GrantsTable) -> Vec<&Consumer> {
    let mut out: Vec<&Consumer> = Vec::new();
    for consumer in table.scopes().iter().flat_map(|g| &g.consumers) {
        if !out.iter().any(|c| c.orgno == consumer.orgno) {
            out.push(consumer);
        }
    }
    out
}

/// An organization number no scope of the table names, for the "any other organization"
/// column: decided by the issuer's rules like every other cell (a scope accessible for all
/// still refuses an organization when it does not allow Maskinporten clients).
pub(super) fn outsider(consumers: &[&Consumer]) -> String {
    (0..=consumers.len())
        .map(|n| format!("{:09}", 999_999_999 - n))
        .find(|orgno| !consumers.iter().any(|c| c.orgno == *orgno))
        .expect("one of len + 1 numbers is nobody's")
}

/// The whole answer.
pub fn report(page: &DevPage) -> Value {
    let manifest = &page.manifest;
    let table = manifest.grants();
    let consumers = consumers(&table);
    let outsider = outsider(&consumers);
    let rows: Vec<Value> = table
        .scopes()
        .iter()
        .map(|grant| {
            let cells: Vec<Value> = consumers
                .iter()
                .map(|c| {
                    let (state, why) = cell(&table, &c.orgno, &grant.scope);
                    json!({"state": state.as_str(), "why": why})
                })
                .collect();
            let (state, why) = cell(&table, &outsider, &grant.scope);
            json!({
                "grant": grant,
                "cells": cells,
                "other": {"state": state.as_str(), "why": why},
            })
        })
        .collect();
    let diagnostics: Vec<Value> = manifest
        .diagnostics()
        .iter()
        .map(|d| json!({"diagnostic": d, "text": render::diagnostic(d)}))
        .collect();
    let routes: Option<Vec<Value>> = page.proxy.as_ref().map(|proxy| {
        proxy
            .policy
            .routes()
            .iter()
            .map(|route| {
                json!({
                    "line": route.line(),
                    "methods": route.methods().map(|m| m.iter().map(|m| m.as_str()).collect::<Vec<_>>()),
                    "path": route.pattern().as_str(),
                    "access": route.describe_access(),
                })
            })
            .collect()
    });
    json!({
        "served_by": page.served_by,
        "file": manifest.file(),
        "summary": render::summary(manifest.file(), manifest.diagnostics()),
        "prefix": manifest.options().prefix,
        "issuer": page.issuer_url,
        "note": page.note,
        "required_audience": page.validator.required_audience(),
        "consumers": consumers,
        "rows": rows,
        "diagnostics": diagnostics,
        "proxy": page.proxy.as_ref().map(|p| json!({
            "url": p.url,
            "policy": p.policy.file(),
            "default": p.policy.default_action().as_str(),
            "routes": routes,
        })),
    })
}

pub(super) async fn grants(axum::extract::State(page): State) -> Response {
    json(report(&page))
}
