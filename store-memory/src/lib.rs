//! In-memory store (under construction).
