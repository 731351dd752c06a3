//! The web view: a one-page app (plain HTML, CSS and JavaScript modules
//! under `daemon/web/`, compiled into the binary) served at `/` and
//! `/ui/<file>`, so an operator needs no other web server and no internet.
//!
//! These routes hold no data and need no token; the page reads the public
//! API (`/api/v1`) with the bearer token the operator signs in with. They
//! are not in [`crate::api::route_table`], which lists the API the OpenAPI
//! document describes. Every answer carries a Content-Security-Policy that
//! allows only this origin (no inline script, no CDN, no framing).

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// The policy for every asset: scripts, styles and API calls from this
/// origin only; no plugins, no framing by other sites, no `<base>` tricks.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// One compiled-in file: name under `/ui/`, content type, bytes.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const JS: &str = "text/javascript; charset=utf-8";

/// Every file of `daemon/web/` the page loads.
const ASSETS: &[Asset] = &[
    Asset {
        name: "index.html",
        content_type: "text/html; charset=utf-8",
        body: include_str!("../web/index.html"),
    },
    Asset {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("../web/app.css"),
    },
    Asset {
        name: "app.js",
        content_type: JS,
        body: include_str!("../web/app.js"),
    },
    Asset {
        name: "api.js",
        content_type: JS,
        body: include_str!("../web/api.js"),
    },
    Asset {
        name: "stream.js",
        content_type: JS,
        body: include_str!("../web/stream.js"),
    },
    Asset {
        name: "table.js",
        content_type: JS,
        body: include_str!("../web/table.js"),
    },
    Asset {
        name: "dom.js",
        content_type: JS,
        body: include_str!("../web/dom.js"),
    },
    Asset {
        name: "plans.js",
        content_type: JS,
        body: include_str!("../web/plans.js"),
    },
    Asset {
        name: "plan.js",
        content_type: JS,
        body: include_str!("../web/plan.js"),
    },
    Asset {
        name: "compliance.js",
        content_type: JS,
        body: include_str!("../web/compliance.js"),
    },
    Asset {
        name: "events.js",
        content_type: JS,
        body: include_str!("../web/events.js"),
    },
];

fn serve(name: &str) -> Response {
    let Some(a) = ASSETS.iter().find(|a| a.name == name) else {
        return (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "no such file of the web view",
        )
            .into_response();
    };
    let mut r = (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(a.content_type),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CSP),
            ),
            // The files change with the binary: always ask, never serve stale code.
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
        ],
        a.body,
    )
        .into_response();
    if a.name == "index.html" {
        r.headers_mut()
            .insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    r
}

/// `/` and `/ui/{file}`.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(|| async { serve("index.html") }))
        .route(
            "/ui/{file}",
            get(|Path(file): Path<String>| async move { serve(&file) }),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_module_the_page_imports_is_served() {
        // An `import ... from "./x.js"` of a file missing here would break
        // the page only in a browser: check the list against the sources.
        for a in ASSETS.iter().filter(|a| a.name.ends_with(".js")) {
            for line in a.body.lines() {
                let Some(rest) = line.split(" from \"./").nth(1) else {
                    continue;
                };
                let Some(file) = rest.split('"').next() else {
                    continue;
                };
                assert!(
                    ASSETS.iter().any(|x| x.name == file),
                    "{} imports {file}, which is not served",
                    a.name
                );
            }
        }
        let index = serve("index.html");
        assert_eq!(
            index.headers()[header::CONTENT_SECURITY_POLICY],
            HeaderValue::from_static(CSP)
        );
        assert_eq!(serve("nothing.js").status(), StatusCode::NOT_FOUND);
    }
}
