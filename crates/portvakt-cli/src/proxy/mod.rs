//! The enforcing reverse proxy. (Being written.)
