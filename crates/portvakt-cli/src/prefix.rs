//! `--prefix`, the organization's part of every fully qualified scope, as `manifest`, `issuer`
//! and `provision` read it: checked where it is given, so that `--prefix 'NAV X'` is refused
//! instead of listing, issuing or creating scopes named `NAV X:arbeid:...`.

use portvakt_manifest::scope_name::is_valid_prefix;

/// clap's value parser for `--prefix`.
pub fn parse_prefix(value: &str) -> Result<String, String> {
    if is_valid_prefix(value) {
        Ok(value.to_owned())
    } else {
        Err(format!(
            "{value:?} is not a scope prefix: use the organization's prefix at Digdir, lowercase letters and digits only (e.g. nav)"
        ))
    }
}
