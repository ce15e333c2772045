//! The example servers' global allocator: the one `portvakt`'s binary uses (see its
//! `main.rs`), so that a floor measured beside portvakt differs from it only in what it does
//! per request, not in how its memory is kept.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
