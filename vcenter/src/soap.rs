//! The vim25 SOAP messages firmflow sends, and how answers and faults read.
//!
//! Every request is a variant of [`Request`]; its body is written by hand in
//! the element order the vim25 WSDL prescribes (vCenter rejects misordered
//! elements). Answers are read from a small XML tree ([`crate::xml`]).

use crate::xml::{Element, escape};
use std::fmt::Write as _;

/// A managed object reference (`<obj type="HostSystem">host-23</obj>`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MoRef {
    /// Managed object type, e.g. `HostSystem`.
    pub kind: String,
    /// Managed object id, e.g. `host-23`.
    pub value: String,
}

impl MoRef {
    /// Builds a reference.
    pub fn new(kind: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            kind: kind.into(),
            value: value.into(),
        }
    }

    /// Reads `<x type="T">id</x>`; `None` when the type attribute is absent.
    pub(crate) fn from_element(e: &Element) -> Option<Self> {
        Some(Self::new(e.attr("type")?, e.text.trim()))
    }

    fn write(&self, out: &mut String, tag: &str) {
        let _ = write!(
            out,
            r#"<{tag} type="{}">{}</{tag}>"#,
            escape(&self.kind),
            escape(&self.value)
        );
    }
}

impl std::fmt::Display for MoRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.kind, self.value)
    }
}

/// One step of a property-collector traversal (`TraversalSpec`).
#[derive(Clone, Debug)]
pub(crate) struct Traversal {
    pub(crate) kind: &'static str,
    pub(crate) path: &'static str,
}

/// Which properties to read of which type (`PropertySpec`).
#[derive(Clone, Debug)]
pub(crate) struct PropSpec {
    pub(crate) kind: &'static str,
    pub(crate) paths: Vec<&'static str>,
}

/// A whole `PropertyFilterSpec` with one starting object.
#[derive(Clone, Debug)]
pub(crate) struct FilterSpec {
    pub(crate) obj: MoRef,
    /// Whether to leave the starting object out of the results.
    pub(crate) skip: bool,
    pub(crate) traverse: Vec<Traversal>,
    pub(crate) props: Vec<PropSpec>,
}

impl FilterSpec {
    fn write(&self, out: &mut String) {
        out.push_str("<specSet>");
        for p in &self.props {
            let _ = write!(out, "<propSet><type>{}</type><all>false</all>", p.kind);
            for path in &p.paths {
                let _ = write!(out, "<pathSet>{path}</pathSet>");
            }
            out.push_str("</propSet>");
        }
        out.push_str("<objectSet>");
        self.obj.write(out, "obj");
        let _ = write!(out, "<skip>{}</skip>", self.skip);
        for t in &self.traverse {
            let _ = write!(
                out,
                r#"<selectSet xsi:type="TraversalSpec"><type>{}</type><path>{}</path><skip>false</skip></selectSet>"#,
                t.kind, t.path
            );
        }
        out.push_str("</objectSet></specSet>");
    }
}

/// The vim25 calls firmflow makes. `Debug` is written by hand: the derived
/// one would print the `Login` password.
pub(crate) enum Request<'a> {
    RetrieveServiceContent,
    Login {
        session_manager: &'a MoRef,
        user: &'a str,
        password: &'a str,
    },
    Logout {
        session_manager: &'a MoRef,
    },
    RetrievePropertiesEx {
        collector: &'a MoRef,
        spec: &'a FilterSpec,
    },
    ContinueRetrievePropertiesEx {
        collector: &'a MoRef,
        token: &'a str,
    },
    EnterMaintenanceMode {
        host: &'a MoRef,
        timeout_secs: i32,
        evacuate_powered_off_vms: bool,
    },
    ExitMaintenanceMode {
        host: &'a MoRef,
        timeout_secs: i32,
    },
    CancelTask {
        task: &'a MoRef,
    },
    CreateContainerView {
        view_manager: &'a MoRef,
        container: &'a MoRef,
        kind: &'static str,
    },
    DestroyView {
        view: &'a MoRef,
    },
}

impl std::fmt::Debug for Request<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct(self.method());
        match self {
            Request::RetrieveServiceContent => {}
            Request::Login {
                session_manager,
                user,
                password: _,
            } => {
                d.field("session_manager", session_manager)
                    .field("user", user)
                    .field("password", &"[REDACTED]");
            }
            Request::Logout { session_manager } => {
                d.field("session_manager", session_manager);
            }
            Request::RetrievePropertiesEx { collector, spec } => {
                d.field("collector", collector).field("spec", spec);
            }
            Request::ContinueRetrievePropertiesEx { collector, token } => {
                d.field("collector", collector).field("token", token);
            }
            Request::EnterMaintenanceMode {
                host,
                timeout_secs,
                evacuate_powered_off_vms,
            } => {
                d.field("host", host)
                    .field("timeout_secs", timeout_secs)
                    .field("evacuate_powered_off_vms", evacuate_powered_off_vms);
            }
            Request::ExitMaintenanceMode { host, timeout_secs } => {
                d.field("host", host).field("timeout_secs", timeout_secs);
            }
            Request::CancelTask { task } => {
                d.field("task", task);
            }
            Request::CreateContainerView {
                view_manager,
                container,
                kind,
            } => {
                d.field("view_manager", view_manager)
                    .field("container", container)
                    .field("kind", kind);
            }
            Request::DestroyView { view } => {
                d.field("view", view);
            }
        }
        d.finish()
    }
}

impl Request<'_> {
    /// The SOAP operation name (also the body element).
    pub(crate) fn method(&self) -> &'static str {
        match self {
            Request::RetrieveServiceContent => "RetrieveServiceContent",
            Request::Login { .. } => "Login",
            Request::Logout { .. } => "Logout",
            Request::RetrievePropertiesEx { .. } => "RetrievePropertiesEx",
            Request::ContinueRetrievePropertiesEx { .. } => "ContinueRetrievePropertiesEx",
            Request::EnterMaintenanceMode { .. } => "EnterMaintenanceMode_Task",
            Request::ExitMaintenanceMode { .. } => "ExitMaintenanceMode_Task",
            Request::CancelTask { .. } => "CancelTask",
            Request::CreateContainerView { .. } => "CreateContainerView",
            Request::DestroyView { .. } => "DestroyView",
        }
    }

    /// The whole SOAP envelope.
    pub(crate) fn envelope(&self) -> String {
        let mut b = String::with_capacity(512);
        b.push_str(
            r#"<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>"#,
        );
        let m = self.method();
        let _ = write!(b, r#"<{m} xmlns="urn:vim25">"#);
        match self {
            Request::RetrieveServiceContent => {
                MoRef::new("ServiceInstance", "ServiceInstance").write(&mut b, "_this")
            }
            Request::Login {
                session_manager,
                user,
                password,
            } => {
                session_manager.write(&mut b, "_this");
                let _ = write!(
                    b,
                    "<userName>{}</userName><password>{}</password>",
                    escape(user),
                    escape(password)
                );
            }
            Request::Logout { session_manager } => session_manager.write(&mut b, "_this"),
            Request::RetrievePropertiesEx { collector, spec } => {
                collector.write(&mut b, "_this");
                spec.write(&mut b);
                b.push_str("<options></options>");
            }
            Request::ContinueRetrievePropertiesEx { collector, token } => {
                collector.write(&mut b, "_this");
                let _ = write!(b, "<token>{}</token>", escape(token));
            }
            Request::EnterMaintenanceMode {
                host,
                timeout_secs,
                evacuate_powered_off_vms,
            } => {
                host.write(&mut b, "_this");
                let _ = write!(
                    b,
                    "<timeout>{timeout_secs}</timeout><evacuatePoweredOffVms>{evacuate_powered_off_vms}</evacuatePoweredOffVms>"
                );
            }
            Request::ExitMaintenanceMode { host, timeout_secs } => {
                host.write(&mut b, "_this");
                let _ = write!(b, "<timeout>{timeout_secs}</timeout>");
            }
            Request::CancelTask { task } => task.write(&mut b, "_this"),
            Request::CreateContainerView {
                view_manager,
                container,
                kind,
            } => {
                view_manager.write(&mut b, "_this");
                container.write(&mut b, "container");
                let _ = write!(b, "<type>{kind}</type><recursive>true</recursive>");
            }
            Request::DestroyView { view } => view.write(&mut b, "_this"),
        }
        let _ = write!(b, "</{m}></soapenv:Body></soapenv:Envelope>");
        b
    }
}

/// A vim25 fault: its type (`InvalidLogin`, `Timedout`, ...) and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    /// The vim25 fault type name.
    pub kind: String,
    /// The server's words (`faultstring` or `localizedMessage`).
    pub message: String,
}

impl Fault {
    /// The fault type of a `detail` child or `LocalizedMethodFault.fault`:
    /// `xsi:type`, else the element name without its `Fault` suffix.
    fn type_of(e: &Element) -> String {
        match e.xsi_type() {
            Some(t) => t.to_string(),
            None => e.name.strip_suffix("Fault").unwrap_or(&e.name).to_string(),
        }
    }

    /// Reads a SOAP `Fault` element.
    pub(crate) fn from_soap(fault: &Element) -> Self {
        let message = fault.text_at(&["faultstring"]).unwrap_or("").to_string();
        let kind = fault
            .child("detail")
            .and_then(|d| d.children.first())
            .map(Self::type_of)
            .unwrap_or_else(|| "SoapFault".to_string());
        Self { kind, message }
    }

    /// Reads a `LocalizedMethodFault` (task `info.error`, `missingSet.fault`).
    pub(crate) fn from_localized(e: &Element) -> Self {
        let kind = e
            .child("fault")
            .map(Self::type_of)
            .unwrap_or_else(|| "MethodFault".to_string());
        let mut message = e.text_at(&["localizedMessage"]).unwrap_or("").to_string();
        if message.is_empty() {
            // Some faults carry their text only in faultMessage entries.
            message = e
                .child("fault")
                .into_iter()
                .flat_map(|f| f.children_named("faultMessage"))
                .filter_map(|m| m.text_at(&["message"]))
                .collect::<Vec<_>>()
                .join("; ");
        }
        Self { kind, message }
    }
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.message.is_empty() {
            write!(f, "{}", self.kind)
        } else {
            write!(f, "{}: {}", self.kind, self.message)
        }
    }
}

/// A decoded answer: the operation's response element, or a fault.
#[derive(Debug)]
pub(crate) enum Answer {
    Ok(Element),
    Fault(Fault),
}

/// Reads an envelope. `None` when the document is not a SOAP envelope.
pub(crate) fn read_envelope(root: Element) -> Option<Answer> {
    if root.name != "Envelope" {
        return None;
    }
    let body = root.children.into_iter().find(|c| c.name == "Body")?;
    let first = body.children.into_iter().next()?;
    if first.name == "Fault" {
        Some(Answer::Fault(Fault::from_soap(&first)))
    } else {
        Some(Answer::Ok(first))
    }
}

/// One object of a property-collector answer.
#[derive(Clone, Debug)]
pub(crate) struct ObjectContent {
    pub(crate) obj: MoRef,
    pub(crate) props: Vec<(String, Element)>,
    pub(crate) missing: Vec<(String, Fault)>,
}

impl ObjectContent {
    pub(crate) fn from_element(e: &Element) -> Option<Self> {
        let obj = MoRef::from_element(e.child("obj")?)?;
        let props = e
            .children_named("propSet")
            .filter_map(|p| Some((p.text_at(&["name"])?.to_string(), p.child("val")?.clone())))
            .collect();
        let missing = e
            .children_named("missingSet")
            .filter_map(|m| {
                Some((
                    m.text_at(&["path"])?.to_string(),
                    Fault::from_localized(m.child("fault")?),
                ))
            })
            .collect();
        Some(Self {
            obj,
            props,
            missing,
        })
    }

    /// A property's value element.
    pub(crate) fn prop(&self, name: &str) -> Option<&Element> {
        self.props.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// Why a property is missing, when the server said.
    pub(crate) fn missing(&self, name: &str) -> Option<&Fault> {
        self.missing.iter().find(|(n, _)| n == name).map(|(_, f)| f)
    }

    /// A property's trimmed text.
    pub(crate) fn text(&self, name: &str) -> Option<&str> {
        self.prop(name).map(|v| v.text.trim())
    }
}

/// A property-collector answer that lists `NotAuthenticated` for a property:
/// vCenter's way of saying the session is gone on reads (the call itself
/// succeeds).
pub(crate) fn unauthenticated_read(answer: &Element) -> Option<Fault> {
    answer
        .child("returnval")?
        .children_named("objects")
        .flat_map(|o| o.children_named("missingSet"))
        .filter_map(|m| m.child("fault"))
        .map(Fault::from_localized)
        .find(|f| f.kind == "NotAuthenticated")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::parse;

    #[test]
    fn enter_maintenance_envelope_is_ordered_and_escaped() {
        let host = MoRef::new("HostSystem", "host-<1>");
        let env = Request::EnterMaintenanceMode {
            host: &host,
            timeout_secs: 300,
            evacuate_powered_off_vms: true,
        }
        .envelope();
        assert!(
            env.contains(r#"<EnterMaintenanceMode_Task xmlns="urn:vim25"><_this type="HostSystem">host-&lt;1&gt;</_this><timeout>300</timeout><evacuatePoweredOffVms>true</evacuatePoweredOffVms></EnterMaintenanceMode_Task>"#),
            "{env}"
        );
        assert!(parse(&env).is_ok());
    }

    #[test]
    fn login_escapes_the_password() {
        let sm = MoRef::new("SessionManager", "SessionManager");
        let env = Request::Login {
            session_manager: &sm,
            user: "a@b",
            password: "p<&>",
        }
        .envelope();
        assert!(env.contains("<password>p&lt;&amp;&gt;</password>"));
    }

    #[test]
    fn login_debug_never_shows_the_password() {
        let sm = MoRef::new("SessionManager", "SessionManager");
        let req = Request::Login {
            session_manager: &sm,
            user: "administrator@vsphere.local",
            password: "Vc-s3cret-PASSWORD",
        };
        let shown = format!("{req:?} {req:#?}");
        assert!(!shown.contains("Vc-s3cret-PASSWORD"), "{shown}");
        assert!(shown.contains("administrator@vsphere.local") && shown.contains("REDACTED"));
        // The other calls still show their fields.
        let host = MoRef::new("HostSystem", "host-23");
        let cancel = format!("{:?}", Request::CancelTask { task: &host });
        assert!(cancel.contains("host-23"), "{cancel}");
    }

    #[test]
    fn filter_spec_lists_props_then_objects() {
        let spec = FilterSpec {
            obj: MoRef::new("ClusterComputeResource", "domain-c7"),
            skip: true,
            traverse: vec![Traversal {
                kind: "ClusterComputeResource",
                path: "host",
            }],
            props: vec![PropSpec {
                kind: "HostSystem",
                paths: vec!["name", "runtime.inMaintenanceMode"],
            }],
        };
        let pc = MoRef::new("PropertyCollector", "propertyCollector");
        let env = Request::RetrievePropertiesEx {
            collector: &pc,
            spec: &spec,
        }
        .envelope();
        let root = parse(&env).expect("well-formed");
        let specset = root
            .path(&["Body", "RetrievePropertiesEx", "specSet"])
            .expect("specSet");
        let names: Vec<_> = specset.children.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["propSet", "objectSet"]);
        let sel = specset
            .path(&["objectSet", "selectSet"])
            .expect("selectSet");
        assert_eq!(sel.xsi_type(), Some("TraversalSpec"));
    }

    #[test]
    fn faults_read_type_from_xsi_type_or_element_name() {
        let doc = r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>Login failure</faultstring><detail><InvalidLoginFault xsi:type="InvalidLogin"></InvalidLoginFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>"#;
        let Some(Answer::Fault(f)) = read_envelope(parse(doc).expect("xml")) else {
            panic!("fault expected")
        };
        assert_eq!(f.kind, "InvalidLogin");
        assert_eq!(f.message, "Login failure");
        let no_type = parse("<Fault><detail><MethodDisabledFault/></detail></Fault>").expect("xml");
        assert_eq!(Fault::from_soap(&no_type).kind, "MethodDisabled");
        let bare = parse("<Fault><faultstring>x</faultstring></Fault>").expect("xml");
        assert_eq!(Fault::from_soap(&bare).kind, "SoapFault");
    }

    #[test]
    fn localized_fault_falls_back_to_fault_messages() {
        let e = parse(
            r#"<error xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><fault xsi:type="Timedout"><faultMessage><key>k</key><message>took too long</message></faultMessage></fault><localizedMessage></localizedMessage></error>"#,
        )
        .expect("xml");
        let f = Fault::from_localized(&e);
        assert_eq!(f.kind, "Timedout");
        assert_eq!(f.message, "took too long");
        assert_eq!(f.to_string(), "Timedout: took too long");
    }
}
