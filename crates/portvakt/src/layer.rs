//! A tower `Layer` that validates Bearer tokens. (Being written.)
