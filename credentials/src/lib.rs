//! firmflow-credentials (under construction).
