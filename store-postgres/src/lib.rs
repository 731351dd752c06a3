//! firmflow-store-postgres (under construction).
