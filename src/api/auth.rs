//! Bearer keys for everything under /v1.
//!
//! [`ApiKey`] is an extractor every /v1 operation takes, so the check cannot be forgotten on
//! one route and the OpenAPI document marks each operation as secured. With no keys
//! configured it lets everything through: `serve` only allows that on a loopback address.

use poem::Request;
use poem::web::headers::{Authorization, HeaderMapExt, authorization::Bearer};
use poem_openapi::registry::{MetaSecurityScheme, Registry};
use poem_openapi::{ApiExtractor, ApiExtractorType, ExtractParamOptions};

use super::AppState;
use super::error::ApiError;

/// The keys clients may present. Empty means "no authentication".
#[derive(Clone, Default)]
pub struct ApiKeys(Vec<String>);

impl std::fmt::Debug for ApiKeys {
    // Never print the keys themselves.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiKeys({} keys)", self.0.len())
    }
}

impl ApiKeys {
    /// Parses CLINICFLOW_API_KEYS: comma-separated, blanks ignored.
    pub fn parse(list: &str) -> ApiKeys {
        ApiKeys(
            list.split(',')
                .map(str::trim)
                .filter(|k| !k.is_empty())
                .map(String::from)
                .collect(),
        )
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `token` is one of the keys, compared in constant time per key so response
    /// times do not reveal how much of a guess was right.
    pub fn accepts(&self, token: &str) -> bool {
        self.0.iter().fold(false, |found, key| {
            found | constant_time_eq(key.as_bytes(), token.as_bytes())
        })
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Proof that the request may use /v1 (a valid key, or no keys configured).
pub struct ApiKey;

const SCHEME: &str = "bearer";

impl<'a> ApiExtractor<'a> for ApiKey {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];

    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        registry.create_security_scheme(
            SCHEME,
            MetaSecurityScheme {
                ty: "http",
                description: Some("One of the keys in CLINICFLOW_API_KEYS, as `Authorization: Bearer <key>`."),
                name: None,
                key_in: None,
                scheme: Some("bearer"),
                bearer_format: None,
                flows: None,
                openid_connect_url: None,
            },
        );
    }

    fn security_schemes() -> Vec<&'static str> {
        vec![SCHEME]
    }

    async fn from_request(
        req: &'a Request,
        _body: &mut poem::RequestBody,
        _opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        let Some(state) = req.data::<AppState>() else {
            return Err(ApiError::Internal("the app state is missing".into()).into());
        };
        if state.keys.is_empty() {
            return Ok(ApiKey);
        }
        match req.headers().typed_get::<Authorization<Bearer>>() {
            Some(Authorization(bearer)) if state.keys.accepts(bearer.token()) => Ok(ApiKey),
            _ => Err(ApiError::Unauthorized.into()),
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
}
