//! Paths to routes, as a pure function, so that routing and its metric labels are tested
//! without a server. Path segments are percent-decoded: subjects may hold any character.

/// One endpoint of the REST API, with its path parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/`
    Root,
    /// `/metrics`
    Metrics,
    /// `/schemas/types`
    SchemaTypes,
    /// `/schemas/ids/{id}`
    SchemaById(String),
    /// `/schemas/ids/{id}/schema`
    SchemaByIdText(String),
    /// `/schemas/ids/{id}/subjects`
    SchemaByIdSubjects(String),
    /// `/schemas/ids/{id}/versions`
    SchemaByIdVersions(String),
    /// `/subjects`
    Subjects,
    /// `/subjects/{s}`
    Subject(String),
    /// `/subjects/{s}/versions`
    SubjectVersions(String),
    /// `/subjects/{s}/versions/{v}`
    SubjectVersion(String, String),
    /// `/subjects/{s}/versions/{v}/schema`
    SubjectVersionText(String, String),
    /// `/subjects/{s}/versions/{v}/referencedby`
    ReferencedBy(String, String),
    /// `/config`
    Config,
    /// `/config/{s}`
    SubjectConfig(String),
    /// `/mode`
    Mode,
    /// `/mode/{s}`
    SubjectMode(String),
    /// `/compatibility/subjects/{s}/versions`
    CompatibilityAll(String),
    /// `/compatibility/subjects/{s}/versions/{v}`
    CompatibilityVersion(String, String),
    /// Anything else (including `/associations/...`, which clients probe and must get 404).
    NotFound,
}

impl Route {
    /// Routes a request path (without the query).
    pub fn parse(path: &str) -> Route {
        let raw: Vec<&str> = path
            .trim_matches('/')
            .split('/')
            .filter(|s| !s.is_empty())
            .collect();
        let mut segments = Vec::with_capacity(raw.len());
        for s in raw {
            match percent_decode(s) {
                Some(d) => segments.push(d),
                None => return Route::NotFound,
            }
        }
        let s: Vec<&str> = segments.iter().map(String::as_str).collect();
        let own = |x: &str| x.to_string();
        match s.as_slice() {
            [] => Route::Root,
            ["metrics"] => Route::Metrics,
            ["schemas", "types"] => Route::SchemaTypes,
            ["schemas", "ids", id] => Route::SchemaById(own(id)),
            ["schemas", "ids", id, "schema"] => Route::SchemaByIdText(own(id)),
            ["schemas", "ids", id, "subjects"] => Route::SchemaByIdSubjects(own(id)),
            ["schemas", "ids", id, "versions"] => Route::SchemaByIdVersions(own(id)),
            ["subjects"] => Route::Subjects,
            ["subjects", subject] => Route::Subject(own(subject)),
            ["subjects", subject, "versions"] => Route::SubjectVersions(own(subject)),
            ["subjects", subject, "versions", v] => Route::SubjectVersion(own(subject), own(v)),
            ["subjects", subject, "versions", v, "schema"] => {
                Route::SubjectVersionText(own(subject), own(v))
            }
            ["subjects", subject, "versions", v, "referencedby"] => {
                Route::ReferencedBy(own(subject), own(v))
            }
            ["config"] => Route::Config,
            ["config", subject] => Route::SubjectConfig(own(subject)),
            ["mode"] => Route::Mode,
            ["mode", subject] => Route::SubjectMode(own(subject)),
            ["compatibility", "subjects", subject, "versions"] => {
                Route::CompatibilityAll(own(subject))
            }
            ["compatibility", "subjects", subject, "versions", v] => {
                Route::CompatibilityVersion(own(subject), own(v))
            }
            _ => Route::NotFound,
        }
    }

    /// The route's path template: the `endpoint` label of the request metrics (bounded, unlike
    /// the paths).
    pub fn template(&self) -> &'static str {
        match self {
            Route::Root => "/",
            Route::Metrics => "/metrics",
            Route::SchemaTypes => "/schemas/types",
            Route::SchemaById(_) => "/schemas/ids/{id}",
            Route::SchemaByIdText(_) => "/schemas/ids/{id}/schema",
            Route::SchemaByIdSubjects(_) => "/schemas/ids/{id}/subjects",
            Route::SchemaByIdVersions(_) => "/schemas/ids/{id}/versions",
            Route::Subjects => "/subjects",
            Route::Subject(_) => "/subjects/{subject}",
            Route::SubjectVersions(_) => "/subjects/{subject}/versions",
            Route::SubjectVersion(..) => "/subjects/{subject}/versions/{version}",
            Route::SubjectVersionText(..) => "/subjects/{subject}/versions/{version}/schema",
            Route::ReferencedBy(..) => "/subjects/{subject}/versions/{version}/referencedby",
            Route::Config => "/config",
            Route::SubjectConfig(_) => "/config/{subject}",
            Route::Mode => "/mode",
            Route::SubjectMode(_) => "/mode/{subject}",
            Route::CompatibilityAll(_) => "/compatibility/subjects/{subject}/versions",
            Route::CompatibilityVersion(..) => {
                "/compatibility/subjects/{subject}/versions/{version}"
            }
            Route::NotFound => "unknown",
        }
    }
}

/// Decodes `%XX` escapes (and `+` is kept literal, as in paths); None for a broken escape or
/// bytes that are not UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A request's query parameters.
#[derive(Debug, Default, Clone)]
pub struct Query(Vec<(String, String)>);

impl Query {
    /// Parses `a=1&b=two` (percent-decoded, `+` as space); broken pairs are dropped.
    pub fn parse(query: Option<&str>) -> Query {
        let pairs = query
            .unwrap_or_default()
            .split('&')
            .filter(|p| !p.is_empty())
            .filter_map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                Some((
                    percent_decode(&k.replace('+', " "))?,
                    percent_decode(&v.replace('+', " "))?,
                ))
            })
            .collect();
        Query(pairs)
    }

    /// A parameter's value.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A boolean parameter: true only for `true` (any case).
    pub fn flag(&self, name: &str) -> bool {
        self.get(name)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_route_with_decoded_subjects() {
        assert_eq!(Route::parse("/"), Route::Root);
        assert_eq!(
            Route::parse("/subjects/a%2Fb/versions/latest"),
            Route::SubjectVersion("a/b".into(), "latest".into())
        );
        assert_eq!(
            Route::parse("/schemas/ids/3/schema"),
            Route::SchemaByIdText("3".into())
        );
        assert_eq!(
            Route::parse("/compatibility/subjects/s/versions/1"),
            Route::CompatibilityVersion("s".into(), "1".into())
        );
        assert_eq!(Route::parse("/associations/subjects/s"), Route::NotFound);
        assert_eq!(Route::parse("/subjects/%zz"), Route::NotFound);
        assert_eq!(Route::parse("/config/s").template(), "/config/{subject}");
    }

    #[test]
    fn queries_decode_and_flags_are_strict() {
        let q = Query::parse(Some("deleted=true&subject=a%2Db&format=&permanent=yes"));
        assert!(q.flag("deleted"));
        assert!(!q.flag("permanent"));
        assert_eq!(q.get("subject"), Some("a-b"));
        assert_eq!(q.get("format"), Some(""));
        assert!(Query::parse(None).get("x").is_none());
    }
}
