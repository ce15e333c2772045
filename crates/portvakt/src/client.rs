//! Consumer side: `TokenClient` performs the JWT-bearer grant against Maskinporten (or the local
//! issuer) and caches tokens. (Being written.)
