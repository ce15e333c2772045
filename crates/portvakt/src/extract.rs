//! axum extractors for verified tokens. (Being written.)
