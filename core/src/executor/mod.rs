//! The executor (see submodules).
