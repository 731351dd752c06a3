//! firmflow-redfish (under construction).
