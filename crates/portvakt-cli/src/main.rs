//! The `portvakt` command. Subcommands live in their own modules; this file only dispatches.

fn main() {}
