//! Bearer tokens in HTTP: parsing `Authorization` (RFC 6750 section 2.1) and building RFC 6750
//! challenges (`WWW-Authenticate`). Shared by the tower layer and the sidecar proxy. (Being written.)
