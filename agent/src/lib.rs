//! The Cyrcles agent (see issue 5; this crate is a placeholder until then).
