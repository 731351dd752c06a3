//! firmflow-catalog (under construction).
