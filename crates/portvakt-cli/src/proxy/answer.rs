//! The proxy's own answers. Refusals of credentials are [`portvakt::bearer::Rejection`]s (RFC
//! 6750 challenge, status, JSON body), shared with the tower layer; the answers here are the
//! proxy's own: path refused, no route, and the gateway errors. Every body has the same shape,
//! `{"error": "...", "error_description": "..."}` ([`ErrorBody`]).

use std::borrow::Cow;

use axum::body::Body;
use axum::response::Response;
use http::{HeaderValue, StatusCode, header};
use portvakt::bearer::{ErrorBody, Rejection};

/// A JSON answer.
fn json(status: StatusCode, error: &'static str, description: String) -> Response {
    let body = ErrorBody {
        error: Cow::Borrowed(error),
        error_description: description,
    };
    let mut response = Response::new(Body::from(body.to_json()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// A credentials refusal (400/401/403/503) as an axum response.
pub fn rejection(rejection: &Rejection) -> Response {
    rejection.to_response().map(Body::from)
}

/// 403: a `deny = true` route, or no route and `default = "deny"`. No challenge: no token
/// would help.
pub fn denied() -> Response {
    json(
        StatusCode::FORBIDDEN,
        "access_denied",
        "the proxy's policy does not allow this method and path".to_owned(),
    )
}

/// 400: the path is one the proxy refuses (see `RequestPath::parse`).
pub fn bad_path(error: &super::routes::PathError) -> Response {
    json(
        StatusCode::BAD_REQUEST,
        "invalid_path",
        format!("{error}; send the path in its canonical form"),
    )
}

/// 400: `Host` missing from an HTTP/1.1 request, or repeated (`host_problem`).
pub fn bad_host(problem: &'static str) -> Response {
    json(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        problem.to_owned(),
    )
}

/// 400: a method with a lower-case letter (see `handle`).
pub fn bad_method(method: &http::Method) -> Response {
    json(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        format!(
            "method `{}` has lower-case letters; methods are case-sensitive: send it upper-case",
            portvakt::printable(method.as_str())
        ),
    )
}

/// 413: the declared body is over the limit. On HTTP/1.1 the connection is closed, since the
/// body is never read (`Connection` does not exist in HTTP/2, where the stream ends instead).
pub fn too_large(limit: u64, version: http::Version) -> Response {
    let mut response = json(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_large",
        format!("the request body is larger than the proxy forwards ({limit} bytes)"),
    );
    if version < http::Version::HTTP_2 {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// 502: the upstream could not be reached or failed before it answered.
pub fn bad_gateway(description: &str) -> Response {
    json(
        StatusCode::BAD_GATEWAY,
        "bad_gateway",
        description.to_owned(),
    )
}

/// 504: the upstream did not answer in time.
pub fn gateway_timeout(timeout: std::time::Duration) -> Response {
    json(
        StatusCode::GATEWAY_TIMEOUT,
        "gateway_timeout",
        format!(
            "the upstream did not answer within {} ms",
            timeout.as_millis()
        ),
    )
}
