//! The crate's one macro: an error type's codes and classes declared in one table.

/// Declares, in one table, each variant's stable code and its [`ErrorClass`](crate::ErrorClass)
/// (and so its HTTP status), in the manner of axum-core's `define_rejection!`: the text lives
/// on the variant (`thiserror`), the code and class here, and nothing else keeps a copy.
///
/// ```text
/// error_codes! {
///     ValidationError;
///     NotCompactJws | BadBase64 | BadJson => "malformed_token", InvalidToken;
///     ...
/// }
/// ```
///
/// generates a private `entry(&self) -> (&'static str, ErrorClass)` (the match is exhaustive,
/// so a new variant does not compile until it has a row) and `pub const CODES`, one entry per
/// row: a code shared by several variants is listed once.
macro_rules! error_codes {
    ($type:ident; $( $($variant:ident)|+ => $code:literal, $class:ident; )+) => {
        impl $type {
            /// Every code [`code`](Self::code) can return, each once, for pre-registering
            /// metric labels.
            pub const CODES: &'static [&'static str] = &[$($code),+];

            #[inline]
            fn entry(&self) -> (&'static str, $crate::ErrorClass) {
                match self {
                    $( $( $type::$variant { .. } )|+ => ($code, $crate::ErrorClass::$class), )+
                }
            }
        }
    };
}
