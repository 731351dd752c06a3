//! The few Dell (EEMI) and DMTF Base registry messages the simulator emits.
//!
//! Texts are those of Dell's published message registry (as shipped in
//! Dell's Apache-2.0 `omsdk`), so clients matching on `MessageId` suffixes or
//! on message text behave as against a real iDRAC.

/// One registry entry.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Msg {
    pub(crate) id: &'static str,
    pub(crate) message: &'static str,
    pub(crate) resolution: &'static str,
    pub(crate) severity: &'static str,
}

macro_rules! msg {
    ($name:ident, $id:expr, $message:expr, $resolution:expr, $severity:expr) => {
        pub(crate) const $name: Msg = Msg {
            id: $id,
            message: $message,
            resolution: $resolution,
            severity: $severity,
        };
    };
}

msg!(
    SYS413,
    "SYS413",
    "The operation successfully completed.",
    "No response action is required.",
    "Informational"
);
msg!(
    SYS414,
    "SYS414",
    "A new resource is successfully created.",
    "No response action is required.",
    "Informational"
);
msg!(
    SYS415,
    "SYS415",
    "Unable to complete the operation because an invalid username and/or password is entered, and therefore authentication failed.",
    "Enter valid user name and password and retry the operation.",
    "Warning"
);
msg!(
    SYS403,
    "SYS403",
    "Unable to complete the operation because the resource %1 entered in not found.",
    "Enter the correct resource and retry the operation. For information about valid resource, see the Redfish Users Guide available on the support site.",
    "Warning"
);
msg!(
    SYS402,
    "SYS402",
    "Unable to run the method because the requested HTTP method is not allowed.",
    "Enter a valid HTTP method and retry the operation. For information about valid methods, see the Redfish Users Guide available on the support site.",
    "Warning"
);
msg!(
    SYS404,
    "SYS404",
    "Unable to complete the operation because the If-Match request header is missing.",
    "Make sure that the If-Match request header is entered and retry the operation.",
    "Warning"
);
msg!(
    SYS411,
    "SYS411",
    "Unable to upload the file because the file size is greater than specified limit.",
    "Make sure that the file size is less than the specified limit.",
    "Warning"
);
msg!(
    SYS518,
    "SYS518",
    "Unable to complete the request because the iDRAC data sources are unavailable.",
    "Retry the operation after a few minutes.",
    "Critical"
);
msg!(
    RAC0218,
    "RAC0218",
    "The maximum number of user sessions is reached.",
    "Close one or more sessions before opening another session.",
    "Informational"
);
msg!(
    RAC0508,
    "RAC0508",
    "An unexpected error occurred.",
    "Wait for few minutes and refresh the page. If the problem persists, contact service provider.",
    "Critical"
);
msg!(
    RAC0608,
    "RAC0608",
    "The iDRAC will restart when the iDRAC firmware update is complete. All current user sessions will be closed.",
    "Wait for the iDRAC to restart and then log in again.",
    "Informational"
);
msg!(
    LC060,
    "LC060",
    "Lifecycle controller is currently not ready to take provisioning requests",
    "Wait until Lifecycle controller finishes performing current tasks and host system is out of POST, and then retry the operation.",
    "Warning"
);
msg!(
    JCP001,
    "JCP001",
    "Task successfully scheduled.",
    "No response action is required.",
    "Informational"
);
msg!(
    JCP017,
    "JCP017",
    "Job creation request unsuccessful. Maximum number of jobs reached.",
    "Delete completed or unwanted jobs and retry the operation.",
    "Warning"
);
msg!(
    PR19,
    "PR19",
    "Job completed successfully.",
    "No response action is required.",
    "Informational"
);
msg!(
    PR20,
    "PR20",
    "Job in progress.",
    "No response action is required.",
    "Informational"
);
msg!(
    RED001,
    "RED001",
    "Job completed successfully.",
    "No response action is required.",
    "Informational"
);
msg!(
    RED002,
    "RED002",
    "Package successfully downloaded.",
    "Schedule the job if it is not already scheduled.",
    "Informational"
);
msg!(
    RED003,
    "RED003",
    "Downloading package.",
    "Schedule the job if it is not already scheduled.",
    "Informational"
);
msg!(
    RED005,
    "RED005",
    "The specified URI is invalid.",
    "Provide a valid uniform resource identifier (URI) for the share location.",
    "Warning"
);
msg!(
    RED006,
    "RED006",
    "Unable to download Update Package.",
    "Check the network connection and access to the update package from the iDRAC.",
    "Warning"
);
msg!(
    RED007,
    "RED007",
    "Unable to verify Update Package signature.",
    "Re-acquire the Update Package from the service provider.",
    "Warning"
);
msg!(
    RED008,
    "RED008",
    "Unable to extract payloads from Update Package.",
    "Re-acquire the Update Package from the service provider.",
    "Warning"
);
msg!(
    RED014,
    "RED014",
    "Job for this device is already present.",
    "Delete the existing job before scheduling a new update job.",
    "Warning"
);
msg!(
    RED017,
    "RED017",
    "The DUP specified is not compatible with the target system.",
    "Download and use the DUP that matches the system that the installation is targeting.",
    "Warning"
);
msg!(
    RED097,
    "RED097",
    "Unable to complete the firmware update operation because the specified firmware image is for a component that is not in the target system inventory.",
    "Identify and use the firmware image that is applicable to a component of the target system.",
    "Warning"
);
msg!(
    RED106,
    "RED106",
    "Unable to parse the lc_validator_output.xml file because of an internal error.",
    "Retry the operation. If the issue persists, contact your service provider.",
    "Critical"
);
msg!(
    SUP0538,
    "SUP0538",
    "Unable to update %1.",
    "Retry the operation. If the problem persists, contact your service provider.",
    "Critical"
);
msg!(
    SUP024,
    "SUP024",
    "InstanceID value provided for the update operation is invalid",
    "Enumerate inventory, copy the InstanceID value and provide that value for the update operation.",
    "Warning"
);
msg!(
    SUP029,
    "SUP029",
    "Firmware versions on server match catalog, applicable updates are not present in the repository.",
    "No response action is required.",
    "Informational"
);
msg!(
    RED030,
    "RED030",
    "Reboot is complete.",
    "No response action is required.",
    "Informational"
);

msg!(
    LC068,
    "LC068",
    "Unable to perform the import or export operation because there are pending attribute changes or a configuration job is in progress.",
    "Apply or cancel any pending attribute changes. Changes can be applied by creating a targeted configuration job, or the changes can be cancelled by invoking the DeletePendingConfiguration method. If a configuration job is in progress, wait until it is completed before retrying the import or export system configuration operation.",
    "Warning"
);
/// DMTF Base registry messages (`Base.1.12.*`).
pub(crate) mod base {
    use super::Msg;
    msg!(
        SUCCESS,
        "Success",
        "Successfully Completed Request",
        "None",
        "OK"
    );
    msg!(
        CREATED,
        "Created",
        "The resource has been created successfully.",
        "None.",
        "OK"
    );
    msg!(
        MALFORMED_JSON,
        "MalformedJSON",
        "The request body submitted was malformed JSON and could not be parsed by the receiving service.",
        "Ensure that the request body is valid JSON and resubmit the request.",
        "Critical"
    );
    msg!(
        NO_VALID_SESSION,
        "NoValidSession",
        "There is no valid session established with the implementation.",
        "Establish a session before attempting any operations.",
        "Critical"
    );
    msg!(
        RESOURCE_MISSING,
        "ResourceMissingAtURI",
        "The resource at the URI %1 was not found.",
        "Place a valid resource at the URI or correct the URI and resubmit the request.",
        "Critical"
    );
    msg!(
        ACTION_PARAM_MISSING,
        "ActionParameterMissing",
        "The action %1 requires the parameter %2 to be present in the request body.",
        "Supply the action with the required parameter in the request body when the request is resubmitted.",
        "Critical"
    );
    msg!(
        ACTION_PARAM_NOT_IN_LIST,
        "ActionParameterValueNotInList",
        "The value %1 for the parameter %2 in the action %3 is not in the list of acceptable values.",
        "Choose a value from the enumeration list that the implementation can support and resubmit the request if the operation failed.",
        "Warning"
    );
    msg!(
        PROPERTY_VALUE_TYPE,
        "PropertyValueTypeError",
        "The value %1 for the property %2 is of a different type than the property can accept.",
        "Correct the value for the property in the request body and resubmit the request if the operation failed.",
        "Warning"
    );
    msg!(
        PROPERTY_NOT_WRITABLE,
        "PropertyNotWritable",
        "The property %1 is a read only property and cannot be assigned a value.",
        "Remove the property from the request body and resubmit the request if the operation failed.",
        "Warning"
    );
    msg!(
        PROPERTY_VALUE_NOT_IN_LIST,
        "PropertyValueNotInList",
        "The value %1 for the property %2 is not in the list of acceptable values.",
        "Choose a value from the enumeration list that the implementation can support and resubmit the request if the operation failed.",
        "Warning"
    );
    msg!(
        NO_OPERATION,
        "NoOperation",
        "The request body submitted contain no data to act upon and no changes to the resource took place.",
        "Add properties in the JSON object and resubmit the request.",
        "Warning"
    );
    msg!(
        PROPERTY_UNKNOWN,
        "PropertyUnknown",
        "The property %1 is not in the list of valid properties for the resource.",
        "Remove the unknown property from the request body and resubmit the request if the operation failed.",
        "Warning"
    );
    msg!(
        UNSUPPORTED_MEDIA,
        "UnsupportedMediaType",
        "The content type of the request body is not supported by the service.",
        "Resubmit the request with a supported content type.",
        "Critical"
    );
    msg!(
        QUERY_NOT_SUPPORTED,
        "QueryParameterUnsupported",
        "Query parameter %1 is not supported.",
        "Correct or remove the query parameter and resubmit the request.",
        "Warning"
    );
    msg!(
        PRECONDITION_FAILED,
        "PreconditionFailed",
        "The ETag supplied did not match the ETag required to change this resource.",
        "Try the operation again using the appropriate ETag.",
        "Critical"
    );
}

/// Fills `%1`, `%2`, ... with `args`.
pub(crate) fn render(template: &str, args: &[String]) -> String {
    let mut out = template.to_string();
    for (i, a) in args.iter().enumerate().rev() {
        out = out.replace(&format!("%{}", i + 1), a);
    }
    out
}
