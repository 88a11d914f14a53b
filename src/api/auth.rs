//! Bearer keys with roles, for everything under /v1 and for /metrics.
//!
//! A key has one [`Role`]; each operation takes the extractor of the least role that may
//! call it ([`AdminKey`], [`StaffKey`], [`IntegratorKey`], [`MetricsKey`]), so the check cannot
//! be forgotten on one route and the OpenAPI document lists, per operation, the roles whose
//! keys it accepts. With no keys configured everything is let through: `serve` only allows
//! that on a loopback address.
//!
//! Keys come from `CLINICFLOW_API_KEYS` (`role:key,…`; a key without a role is an admin key,
//! as before roles existed) and/or the file named by `CLINICFLOW_API_KEYS_FILE` (one
//! `role:key` a line, `#` comments), so they change without recompiling.
//!
//! A key also has a [`Scope`]: the clinics it may act on (docs/clinics.md). `role@slug:key`
//! is a key of one clinic, `role@a+b:key` of several, `role@*:key` an operator's key of every
//! clinic; a key without `@` is a key of the clinic at the top of the folder (`main`), which
//! is what every key meant before a server could run several clinics. A known key used on a
//! clinic outside its scope gets 403.

use std::marker::PhantomData;

use poem::Request;
use poem::web::headers::{Authorization, HeaderMapExt, authorization::Bearer};
use poem_openapi::registry::{MetaSecurityScheme, Registry};
use poem_openapi::{ApiExtractor, ApiExtractorType, ExtractParamOptions};

use super::AppState;
use super::error::ApiError;
use crate::clinics::Slug;

/// What a key may do. Each role is a separate security scheme in the OpenAPI document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Everything: flows and reload, metrics, and all that staff and integrators may do.
    Admin,
    /// The clinic's front desk: conversations (read, reset), appointments, reminders,
    /// escalations, patients' data; plus what integrators may do.
    Staff,
    /// A system that talks to the assistant for patients (a web chat, a booking form):
    /// send messages on its own conversations (never on WhatsApp, SMS or voice ones),
    /// availability, booking.
    Integrator,
    /// A Prometheus scraper: /metrics only.
    Metrics,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Admin, Role::Staff, Role::Integrator, Role::Metrics];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Staff => "staff",
            Role::Integrator => "integrator",
            Role::Metrics => "metrics",
        }
    }

    fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    fn description(self) -> &'static str {
        match self {
            Role::Admin => {
                "An admin key (`admin:<key>`, or a key without a role, in CLINICFLOW_API_KEYS), as `Authorization: Bearer <key>`: may call everything."
            }
            Role::Staff => {
                "A staff key (`staff:<key>` in CLINICFLOW_API_KEYS), as `Authorization: Bearer <key>`: conversations, appointments, reminders, escalations, patients' data."
            }
            Role::Integrator => {
                "An integrator key (`integrator:<key>` in CLINICFLOW_API_KEYS), as `Authorization: Bearer <key>`: messages on its own (non-Twilio) conversations, availability, booking."
            }
            Role::Metrics => {
                "A metrics key (`metrics:<key>` in CLINICFLOW_API_KEYS), as `Authorization: Bearer <key>`: /metrics only."
            }
        }
    }
}

/// A malformed key list: said at start, with where and how to fix it (never the key).
#[derive(Debug, thiserror::Error)]
#[error("{source_name}, entry {entry}: {problem}")]
pub struct KeysError {
    source_name: String,
    entry: usize,
    problem: String,
}

/// The clinics a key may act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// An operator's key: every clinic of the deployment, present and future.
    All,
    /// These clinics only.
    Clinics(Vec<Slug>),
}

impl Scope {
    pub fn covers(&self, clinic: &Slug) -> bool {
        match self {
            Scope::All => true,
            Scope::Clinics(list) => list.contains(clinic),
        }
    }

    /// `*` or slugs joined by `+`.
    fn parse(s: &str) -> Result<Scope, String> {
        if s.trim() == "*" {
            return Ok(Scope::All);
        }
        let mut list = Vec::new();
        for part in s.split('+') {
            list.push(
                Slug::parse(part.trim()).map_err(|e| format!("{e} (after `@` come clinics joined by `+`, or `*`)"))?,
            );
        }
        Ok(Scope::Clinics(list))
    }
}

/// What a presented key may do on one clinic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    /// Not one of the keys.
    Unknown,
    /// A key whose scope does not include this clinic.
    OtherClinic,
    Role(Role),
}

/// One configured key.
#[derive(Clone)]
struct Entry {
    role: Role,
    scope: Scope,
    key: String,
}

/// The keys clients may present, each with its role and clinics. Empty means "no
/// authentication".
#[derive(Clone, Default)]
pub struct ApiKeys(Vec<Entry>);

impl std::fmt::Debug for ApiKeys {
    // Never print the keys themselves.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiKeys({} keys)", self.0.len())
    }
}

/// Keys shorter than this are accepted (deployments predate roles) but warned about.
pub const MIN_KEY_LEN: usize = 16;

impl ApiKeys {
    /// Parses a comma-separated list (CLINICFLOW_API_KEYS) leniently, for tests and callers
    /// that checked it already: entries that do not parse are skipped. `serve` uses
    /// [`ApiKeys::load`], which reports them.
    pub fn parse(list: &str) -> ApiKeys {
        let mut keys = ApiKeys::default();
        for entry in list.split(',') {
            if let Ok(Some(k)) = parse_entry(entry) {
                keys.0.push(k);
            }
        }
        keys
    }

    /// Reads CLINICFLOW_API_KEYS (`list`) and the file CLINICFLOW_API_KEYS_FILE names
    /// (`file`: its name and contents). An unknown role is an error, so a typo never becomes
    /// an admin key or a key nobody can use.
    pub fn load(list: &str, file: Option<(&str, &str)>) -> Result<ApiKeys, KeysError> {
        let mut keys = ApiKeys::default();
        let mut add = |source_name: &str, entries: Vec<&str>| -> Result<(), KeysError> {
            for (i, entry) in entries.into_iter().enumerate() {
                let err = |problem: String| KeysError {
                    source_name: source_name.to_string(),
                    entry: i + 1,
                    problem,
                };
                if let Some(k) = parse_entry(entry).map_err(err)? {
                    keys.0.push(k);
                }
            }
            Ok(())
        };
        add("CLINICFLOW_API_KEYS", list.split(',').collect())?;
        if let Some((name, text)) = file {
            let lines = text
                .lines()
                .map(|l| if l.trim_start().starts_with('#') { "" } else { l })
                .collect();
            add(name, lines)?;
        }
        Ok(keys)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many keys are shorter than [`MIN_KEY_LEN`] (`serve` warns: they can be guessed).
    pub fn short(&self) -> usize {
        self.0.iter().filter(|e| e.key.chars().count() < MIN_KEY_LEN).count()
    }

    /// How many keys of each role, for the start banner.
    pub fn summary(&self) -> String {
        Role::ALL
            .into_iter()
            .filter_map(|r| {
                let n = self.0.iter().filter(|e| e.role == r).count();
                (n > 0).then(|| format!("{n} {}", r.as_str()))
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The role of `token` on the clinic at the top of the folder (`main`), if it is one of
    /// the keys and covers it.
    pub fn role_of(&self, token: &str) -> Option<Role> {
        match self.grant(token, &Slug::main()) {
            Grant::Role(r) => Some(r),
            _ => None,
        }
    }

    /// What `token` may do on `clinic`. Every key is compared, each in constant time, so
    /// response times do not reveal how much of a guess was right or which key it resembled.
    pub fn grant(&self, token: &str, clinic: &Slug) -> Grant {
        self.0.iter().fold(Grant::Unknown, |found, e| {
            let hit = constant_time_eq(e.key.as_bytes(), token.as_bytes());
            match found {
                Grant::Role(_) => found,
                _ if hit && e.scope.covers(clinic) => Grant::Role(e.role),
                Grant::Unknown if hit => Grant::OtherClinic,
                _ => found,
            }
        })
    }

    /// Whether `token` is a key covering every clinic in `clinics` (what /metrics, which
    /// counts every clinic, asks of a key), and its role.
    pub fn role_on_all<'a>(&self, token: &str, clinics: impl IntoIterator<Item = &'a Slug>) -> Grant {
        let mut role = None;
        for c in clinics {
            match self.grant(token, c) {
                Grant::Role(r) if role.is_none_or(|x| x == r) => role = Some(r),
                Grant::Role(_) => return Grant::OtherClinic,
                other => return other,
            }
        }
        role.map_or(Grant::Unknown, Grant::Role)
    }

    /// Whether `token` is one of the keys (any role, any clinic).
    pub fn accepts(&self, token: &str) -> bool {
        self.grant(token, &Slug::main()) != Grant::Unknown
    }
}

/// One entry: `role:key`, `role@clinics:key` or a bare key (admin of `main`). Blank entries
/// are None. A prefix before `:` that looks like a role name but is none is an error (a
/// misspelt role must not silently become part of an admin key).
fn parse_entry(entry: &str) -> Result<Option<Entry>, String> {
    let entry = entry.trim();
    if entry.is_empty() {
        return Ok(None);
    }
    let main = || Scope::Clinics(vec![Slug::main()]);
    let bare = || Entry {
        role: Role::Admin,
        scope: main(),
        key: entry.to_string(),
    };
    match entry.split_once(':') {
        Some((prefix, key)) => {
            let (role_name, scope) = match prefix.split_once('@') {
                Some((r, s)) => (r.trim(), Some(s)),
                None => (prefix.trim(), None),
            };
            match Role::parse(role_name) {
                Some(_) if key.trim().is_empty() => {
                    Err(format!("the `{}:` entry has no key after the colon", prefix.trim()))
                }
                Some(role) => Ok(Some(Entry {
                    role,
                    scope: match scope {
                        Some(s) => Scope::parse(s)?,
                        None => main(),
                    },
                    key: key.trim().to_string(),
                })),
                None if role_name.chars().all(|c| c.is_ascii_alphabetic()) => Err(format!(
                    "unknown role `{role_name}`; the roles are admin, staff, integrator and metrics (write `role:key` or `role@clinic:key`)"
                )),
                // A key that happens to contain a colon.
                None => Ok(Some(bare())),
            }
        }
        None => Ok(Some(bare())),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Which roles an extractor accepts.
pub trait Policy: Send + Sync {
    const ROLES: &'static [Role];
    /// How the refusal names who may call (`a staff or admin key`).
    const WHO: &'static str;
}

/// Proof that the request may call the operation: a key of one of `P::ROLES`, or no keys
/// configured (`role` is then None).
pub struct Key<P: Policy> {
    pub role: Option<Role>,
    _policy: PhantomData<P>,
}

impl<P: Policy> Key<P> {
    /// An integrator key (not staff or admin, not a keyless server): limited to its own
    /// conversations.
    pub fn is_integrator(&self) -> bool {
        self.role == Some(Role::Integrator)
    }
}

pub struct AdminOnly;
impl Policy for AdminOnly {
    const ROLES: &'static [Role] = &[Role::Admin];
    const WHO: &'static str = "an admin key";
}

pub struct StaffOrAdmin;
impl Policy for StaffOrAdmin {
    const ROLES: &'static [Role] = &[Role::Staff, Role::Admin];
    const WHO: &'static str = "a staff or admin key";
}

pub struct IntegratorOrAbove;
impl Policy for IntegratorOrAbove {
    const ROLES: &'static [Role] = &[Role::Integrator, Role::Staff, Role::Admin];
    const WHO: &'static str = "an integrator, staff or admin key";
}

pub struct MetricsOrAdmin;
impl Policy for MetricsOrAdmin {
    const ROLES: &'static [Role] = &[Role::Metrics, Role::Admin];
    const WHO: &'static str = "a metrics or admin key";
}

/// Flows and reload.
pub type AdminKey = Key<AdminOnly>;
/// What the front desk does (and every personal-data endpoint).
pub type StaffKey = Key<StaffOrAdmin>;
/// Talking to the assistant and booking.
pub type IntegratorKey = Key<IntegratorOrAbove>;
/// /metrics.
pub type MetricsKey = Key<MetricsOrAdmin>;

impl<'a, P: Policy> ApiExtractor<'a> for Key<P> {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];

    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        for role in Role::ALL {
            registry.create_security_scheme(
                role.as_str(),
                MetaSecurityScheme {
                    ty: "http",
                    description: Some(role.description()),
                    name: None,
                    key_in: None,
                    scheme: Some("bearer"),
                    bearer_format: None,
                    flows: None,
                    openid_connect_url: None,
                },
            );
        }
    }

    fn security_schemes() -> Vec<&'static str> {
        P::ROLES.iter().map(|r| r.as_str()).collect()
    }

    async fn from_request(
        req: &'a Request,
        _body: &mut poem::RequestBody,
        _opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        let Some(state) = req.data::<AppState>() else {
            return Err(ApiError::Internal("the app state is missing".into()).into());
        };
        let key = |role| Key {
            role,
            _policy: PhantomData,
        };
        if state.keys.is_empty() {
            return Ok(key(None));
        }
        let grant = match req.headers().typed_get::<Authorization<Bearer>>() {
            Some(Authorization(bearer)) => state.grant(bearer.token()),
            None => Grant::Unknown,
        };
        match grant {
            Grant::Unknown => Err(ApiError::Unauthorized.into()),
            Grant::OtherClinic => Err(ApiError::Forbidden(format!(
                "this key may not act on the clinic `{}`; use a key of that clinic (or an operator's key)",
                state.clinic
            ))
            .into()),
            Grant::Role(role) if P::ROLES.contains(&role) => Ok(key(Some(role))),
            Grant::Role(role) => Err(ApiError::Forbidden(format!(
                "a key with the role `{}` may not call this endpoint; it needs {}",
                role.as_str(),
                P::WHO
            ))
            .into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_parsed_and_compared_exactly() {
        let keys = ApiKeys::parse(" k1, ,k2 ,");
        assert!(keys.accepts("k1") && keys.accepts("k2"));
        assert!(!keys.accepts("k") && !keys.accepts("k1 ") && !keys.accepts(""));
        assert!(ApiKeys::parse(" , ").is_empty());
        assert_eq!(format!("{keys:?}"), "ApiKeys(2 keys)");
    }

    #[test]
    fn roles_come_from_the_prefix_and_a_bare_key_is_admin() {
        let keys = ApiKeys::parse("staff:s1,integrator: i1 ,metrics:m1,plain,x-1:y");
        assert_eq!(keys.role_of("s1"), Some(Role::Staff));
        assert_eq!(keys.role_of("i1"), Some(Role::Integrator));
        assert_eq!(keys.role_of("m1"), Some(Role::Metrics));
        assert_eq!(keys.role_of("plain"), Some(Role::Admin));
        // A key containing a colon whose prefix is not a word stays one admin key.
        assert_eq!(keys.role_of("x-1:y"), Some(Role::Admin));
        assert_eq!(keys.role_of("staff:s1"), None);
        assert_eq!(keys.summary(), "2 admin, 1 staff, 1 integrator, 1 metrics");
    }

    #[test]
    fn scopes_say_which_clinics_a_key_acts_on() {
        let a = Slug::parse("alfa").unwrap();
        let b = Slug::parse("beta").unwrap();
        let main = Slug::main();
        let keys = ApiKeys::load("staff@alfa:ka,admin@alfa+beta:kab,admin@*:op,plain,metrics:m", None).expect("keys");
        assert_eq!(keys.grant("ka", &a), Grant::Role(Role::Staff));
        assert_eq!(keys.grant("ka", &b), Grant::OtherClinic);
        assert_eq!(keys.grant("ka", &main), Grant::OtherClinic);
        assert_eq!(keys.grant("kab", &b), Grant::Role(Role::Admin));
        assert_eq!(
            keys.grant("op", &Slug::parse("new-one").unwrap()),
            Grant::Role(Role::Admin)
        );
        // A key without `@` is main's, as it always was.
        assert_eq!(keys.grant("plain", &main), Grant::Role(Role::Admin));
        assert_eq!(keys.grant("plain", &a), Grant::OtherClinic);
        assert_eq!(keys.grant("nope", &a), Grant::Unknown);
        // /metrics counts every clinic: only a key of all of them.
        assert_eq!(keys.role_on_all("op", [&main, &a]), Grant::Role(Role::Admin));
        assert_eq!(keys.role_on_all("m", [&main]), Grant::Role(Role::Metrics));
        assert_eq!(keys.role_on_all("m", [&main, &a]), Grant::OtherClinic);
        let err = ApiKeys::load("staff@Alfa:k", None).unwrap_err().to_string();
        assert!(err.contains("`Alfa` cannot name a clinic"), "{err}");
    }

    #[test]
    fn load_reports_typos_short_keys_and_reads_the_file() {
        let long = "0123456789abcdef";
        let err = ApiKeys::load(&format!("staf:{long}"), None).unwrap_err().to_string();
        assert!(err.contains("unknown role `staf`") && !err.contains(long), "{err}");
        assert_eq!(ApiKeys::load("staff:short", None).expect("keys").short(), 1);
        let err = ApiKeys::load("metrics:", None).unwrap_err().to_string();
        assert!(err.contains("no key"), "{err}");
        let file = format!("# front desk\nstaff:{long}\n\nmetrics:{long}-m\n");
        let keys = ApiKeys::load(&format!("{long}-a"), Some(("keys.txt", &file))).expect("keys");
        assert_eq!(keys.role_of(long), Some(Role::Staff));
        assert_eq!(keys.role_of(&format!("{long}-m")), Some(Role::Metrics));
        assert_eq!(keys.role_of(&format!("{long}-a")), Some(Role::Admin));
        let err = ApiKeys::load("", Some(("keys.txt", "\n\nadmn:x")))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("keys.txt, entry 3"), "{err}");
    }
}
