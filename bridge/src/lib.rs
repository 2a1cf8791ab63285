//! The Cyrcles bridge (see issue 4; this crate is a placeholder until then).
