//! firmflow-vcenter (under construction).
