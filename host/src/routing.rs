//! Spin's HTTP route matching, so a manifest routes the same under both hosts.
//!
//! Spin (`spin-http/src/routes.rs`) builds a `routefinder` router: exact segments, `:name`
//! parameters and a trailing `/...` wildcard; the most specific route wins (exact before
//! parameter before wildcard, then the longest), and when two triggers declare the same route
//! the last one wins. We use the same library and the same rules, including Spin's treatment of
//! trailing slashes in the trailing-wildcard part (`spin-path-info`).

use std::collections::HashMap;

use crate::manifest::HttpRoute;

/// Routes request paths to component ids.
#[derive(Debug)]
pub struct Router {
    inner: routefinder::Router<Handler>,
}

#[derive(Debug, Clone)]
struct Handler {
    component: String,
    /// The route as written in the manifest.
    raw_route: String,
}

/// The outcome of routing one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatch {
    /// The component that handles the request.
    pub component: String,
    /// The route as written (`spin-matched-route`, `spin-raw-component-route`).
    pub raw_route: String,
    /// The route without its trailing `/...` (`spin-component-route`).
    pub component_route: String,
    /// The part of the path matched by the trailing wildcard (`spin-path-info`).
    pub path_info: String,
    /// `:name` captures (`spin-path-match-<name>`).
    pub params: HashMap<String, String>,
}

impl Router {
    /// Builds the router; a route that does not parse names its component.
    pub fn build(routes: &[HttpRoute]) -> Result<Self, String> {
        // Spin keeps the last trigger of a duplicated route, at the place of the first.
        let mut unique: Vec<&HttpRoute> = Vec::new();
        for r in routes {
            if let Some(slot) = unique.iter_mut().find(|u| u.route == r.route) {
                *slot = r;
            } else {
                unique.push(r);
            }
        }
        let mut inner = routefinder::Router::new();
        for r in unique {
            let based = sanitize(&r.route);
            let spec = match based.strip_suffix("/...") {
                Some(prefix) => format!("{prefix}/*"),
                None => based.clone(),
            };
            let handler = Handler {
                component: r.component.clone(),
                raw_route: r.route.clone(),
            };
            inner.add(spec.as_str(), handler).map_err(|e| {
                format!(
                    "route {:?} of component `{}` does not parse: {e}",
                    r.route, r.component
                )
            })?;
        }
        Ok(Router { inner })
    }

    /// The best match for `path` (no query string), or `None` (a 404).
    pub fn route(&self, path: &str) -> Option<RouteMatch> {
        let m = self.inner.best_match(path)?;
        let handler = m.handler();
        let captures = m.captures();
        let path_info = match captures.wildcard() {
            None => String::new(),
            // Spin keeps the trailing slash that routefinder drops.
            Some(w) => match (w.is_empty(), path.ends_with('/')) {
                (true, false) => String::new(),
                (true, true) => "/".to_owned(),
                (false, false) => format!("/{w}"),
                (false, true) => format!("/{w}/"),
            },
        };
        let params = captures
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let raw = &handler.raw_route;
        Some(RouteMatch {
            component: handler.component.clone(),
            raw_route: raw.clone(),
            component_route: raw.strip_suffix("/...").unwrap_or(raw).to_owned(),
            path_info,
            params,
        })
    }
}

/// Absolute, without one trailing slash (Spin's `sanitize_with_base` with base `/`).
fn sanitize(route: &str) -> String {
    let abs = if route.starts_with('/') {
        route.to_owned()
    } else {
        format!("/{route}")
    };
    match abs.strip_suffix('/') {
        Some(s) => s.to_owned(),
        None => abs,
    }
}

#[cfg(test)]
mod tests {
    //! Cases taken from Spin's own router tests, so a difference shows up here first.
    use super::*;

    fn router(routes: &[(&str, &str)]) -> Router {
        let routes: Vec<HttpRoute> = routes
            .iter()
            .map(|(c, r)| HttpRoute {
                component: (*c).into(),
                route: (*r).into(),
            })
            .collect();
        Router::build(&routes).unwrap()
    }

    fn component(r: &Router, path: &str) -> String {
        r.route(path).unwrap().component
    }

    #[test]
    fn exact_routes() {
        let r = router(&[("foo", "/foo"), ("foobar", "/foo/bar")]);
        assert_eq!(component(&r, "/foo"), "foo");
        assert_eq!(component(&r, "/foo/bar"), "foobar");
        assert!(r.route("/foo/baz").is_none());
        assert!(r.route("/").is_none());
    }

    #[test]
    fn root_wildcard_catches_everything() {
        let r = router(&[("all", "/...")]);
        for p in ["/foo/bar", "/abc/", "/", "/this/should/be/captured"] {
            assert_eq!(component(&r, p), "all", "{p}");
        }
    }

    #[test]
    fn longest_wildcard_wins_regardless_of_order() {
        let mut routes = vec![
            ("one", "/one/..."),
            ("onetwo", "/one/two/..."),
            ("onetwothree", "/one/two/three/..."),
        ];
        assert_eq!(
            component(&router(&routes), "/one/two/three/four"),
            "onetwothree"
        );
        routes.reverse();
        assert_eq!(
            component(&router(&routes), "/one/two/three/four"),
            "onetwothree"
        );
        assert_eq!(component(&router(&routes), "/one/two"), "onetwo");
    }

    #[test]
    fn exact_beats_wildcard_and_parameter() {
        let r = router(&[
            ("exact", "/register"),
            ("wild", "/..."),
            ("param", "/register/:client_id"),
            ("exact2", "/register/special"),
        ]);
        assert_eq!(component(&r, "/register"), "exact");
        assert_eq!(component(&r, "/register/special"), "exact2");
        assert_eq!(component(&r, "/register/abc"), "param");
        assert_eq!(component(&r, "/register/abc/def"), "wild");
    }

    #[test]
    fn duplicate_routes_last_one_wins() {
        let r = router(&[("first", "/foo"), ("second", "/foo")]);
        assert_eq!(component(&r, "/foo"), "second");
    }

    #[test]
    fn trailing_wildcard_keeps_spins_slashes() {
        let r = router(&[("comp", "/test/...")]);
        let info = |p: &str| r.route(p).unwrap().path_info;
        assert_eq!(info("/test"), "");
        assert_eq!(info("/test/"), "/");
        assert_eq!(info("/test/hello"), "/hello");
        assert_eq!(info("/test/hello/"), "/hello/");
        let root = router(&[("comp", "/...")]);
        assert_eq!(root.route("/1/2/3").unwrap().path_info, "/1/2/3");
    }

    #[test]
    fn named_parameters_are_captured() {
        let r = router(&[("comp", "/1/:two/...")]);
        let m = r.route("/1/2/3").unwrap();
        assert_eq!(m.params["two"], "2");
        assert_eq!(m.path_info, "/3");
        assert_eq!(m.raw_route, "/1/:two/...");
        assert_eq!(m.component_route, "/1/:two");
    }

    #[test]
    fn well_known_oauth_routes_reach_components() {
        let r = router(&[
            ("discovery", "/.well-known/oauth-authorization-server"),
            ("discovery", "/.well-known/oauth-protected-resource/..."),
        ]);
        assert_eq!(
            component(&r, "/.well-known/oauth-authorization-server"),
            "discovery"
        );
        let m = r
            .route("/.well-known/oauth-protected-resource/mcp")
            .unwrap();
        assert_eq!(m.path_info, "/mcp");
    }
}
