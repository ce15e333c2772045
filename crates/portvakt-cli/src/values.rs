//! Checks of the values given on the command line, as clap value parsers: a value that cannot
//! be right is a usage error (exit 2; `provision`'s 1) that names the flag, before anything is
//! read or asked. `token` and `inspect` use the scope, organization number and audience
//! checks; `manifest`, `issuer` and `provision` the prefix's, so that `--prefix 'NAV X'` is
//! refused instead of listing, issuing or creating scopes named `NAV X:arbeid:...`.

use url::Url;

/// A scope: not empty or only white space. It may hold several, separated by white space.
pub fn parse_scope(text: &str) -> Result<String, String> {
    if text.trim().is_empty() {
        return Err("the scope is empty: give one such as nav:arbeid:some.scope.read".to_owned());
    }
    Ok(text.to_owned())
}

/// An organization number: nine ASCII digits.
pub fn parse_orgno(text: &str) -> Result<String, String> {
    if portvakt_manifest::is_nine_digits(text) {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "`{text}` is not a nine-digit organization number, like 889640782"
        ))
    }
}

/// An audience: an absolute URI, as Maskinporten's `resource` and a token's `aud` are.
pub fn parse_audience(text: &str) -> Result<String, String> {
    match Url::parse(text) {
        Ok(_) => Ok(text.to_owned()),
        Err(_) => Err(format!(
            "`{text}` is not an absolute URI, like https://api.example.no/"
        )),
    }
}

/// `--prefix`, the organization's part of every fully qualified scope.
pub fn parse_prefix(value: &str) -> Result<String, String> {
    if portvakt_manifest::scope_name::is_valid_prefix(value) {
        Ok(value.to_owned())
    } else {
        Err(format!(
            "{value:?} is not a scope prefix: use the organization's prefix at Digdir, lowercase letters and digits only (e.g. nav)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_that_cannot_be_right_are_refused() {
        assert!(parse_scope("nav:arbeid:a nav:arbeid:b").is_ok());
        assert!(parse_scope("").is_err());
        assert!(parse_scope(" \t").is_err());
        assert!(parse_orgno("889640782").is_ok());
        for bad in [
            "",
            "abc",
            "88964078",
            "8896407820",
            "88964078x",
            "８８９６４０７８２",
        ] {
            assert!(parse_orgno(bad).is_err(), "{bad}");
        }
        assert!(parse_audience("https://my-api.ekstern.dev.nav.no/").is_ok());
        assert!(parse_audience("not a uri").is_err());
        assert!(parse_audience("my-api").is_err());
    }
}
