//! Who is calling, and what their tags let them do: RabbitMQ's rules. Every request carries
//! HTTP basic credentials; only users with a management tag (`management`, `policymaker`,
//! `monitoring`, `administrator`) may use the API; changing users and vhosts needs
//! `administrator`; a `management` user sees only the vhosts it may open.

use super::error::ApiError;
use super::Api;
use crate::local_credential;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
use base64::Engine;
use junction_core::authorized::Authorized;
use junction_core::permissions::{Identity, Permit};
use junction_core::vhost::VHost;
use std::net::SocketAddr;
use std::sync::Arc;

/// Tags that open the management API.
const MANAGEMENT_TAGS: [&str; 4] = ["management", "policymaker", "monitoring", "administrator"];

/// The authenticated caller.
pub(crate) struct Caller {
    /// The user's name.
    pub(crate) name: String,
    /// Its tags.
    pub(crate) tags: Vec<String>,
    /// Whether it came with the node's local credential (not a user).
    pub(crate) local: bool,
}

impl Caller {
    fn has(&self, tag: &str) -> bool {
        self.tags.iter().any(|t| t == tag)
    }

    /// 403 unless the caller is an administrator.
    pub(crate) fn require_administrator(&self) -> Result<(), ApiError> {
        if self.has("administrator") {
            Ok(())
        } else {
            Err(ApiError::forbidden("Not administrator user"))
        }
    }

    /// 403 unless the caller may manage policies (`policymaker` or `administrator`).
    pub(crate) fn require_policymaker(&self) -> Result<(), ApiError> {
        if self.has("administrator") || self.has("policymaker") {
            Ok(())
        } else {
            Err(ApiError::forbidden("Not policymaker user"))
        }
    }

    /// Whether the caller sees everything (administrators and monitoring users) rather than
    /// only the vhosts it may open.
    pub(crate) fn sees_all(&self) -> bool {
        self.has("administrator") || self.has("monitoring")
    }

    /// Whether the caller may see what is in `vhost`.
    pub(crate) fn may_see(&self, api: &Api, vhost: &str) -> bool {
        self.sees_all()
            || api
                .broker
                .auth()
                .check_vhost(&self.name, vhost, None)
                .is_ok()
    }

    /// The vhost `name`, if the caller may use it (404 when it does not exist, 403 when it is
    /// not the caller's).
    pub(crate) fn vhost(&self, api: &Api, name: &str) -> Result<Arc<VHost>, ApiError> {
        let v = api.broker.vhost(name).map_err(|_| ApiError::not_found())?;
        if !self.may_see(api, name) {
            return Err(ApiError::forbidden(format!(
                "access to vhost '{name}' refused for user '{}'",
                self.name
            )));
        }
        Ok(v)
    }

    /// `vhost` as the caller may use it: its publishes, gets and declares pass the caller's
    /// permissions, as they would over AMQP (RabbitMQ's rule for the API; administrators too).
    /// The node's own ctl, with the local credential, has every right.
    pub(crate) fn authorized(&self, api: &Api, vhost: Arc<VHost>) -> Authorized {
        let permit = if self.local {
            Permit::unrestricted(api.broker.clone(), &vhost.name)
        } else {
            Permit::new(
                api.broker.clone(),
                Identity {
                    user: self.name.clone(),
                    vhost: vhost.name.clone(),
                    client_id: None,
                },
            )
        };
        Authorized::new(vhost, permit)
    }

    /// Every vhost the caller may see, by name.
    pub(crate) fn vhosts(&self, api: &Api) -> Vec<Arc<VHost>> {
        let mut all = api.broker.vhost_list();
        all.retain(|v| self.may_see(api, &v.name));
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }
}

impl FromRequestParts<Api> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, api: &Api) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0);
        if let Some(caller) = local_caller(parts, api, peer)? {
            return Ok(caller);
        }
        let (name, password) =
            basic_credentials(parts).ok_or_else(|| ApiError::unauthorized("Not_Authorized"))?;
        let user = api
            .broker
            .auth()
            .authenticate(&name, &password, peer, "HTTP")
            .map_err(|_| ApiError::unauthorized("Not_Authorized"))?;
        if !user
            .tags
            .iter()
            .any(|t| MANAGEMENT_TAGS.contains(&t.as_str()))
        {
            return Err(ApiError::unauthorized("Not management user"));
        }
        Ok(Caller {
            name: user.name,
            tags: user.tags,
            local: false,
        })
    }
}

/// The name a caller with the local credential acts under.
pub(crate) const LOCAL_CALLER: &str = "junction-ctl";

/// `Authorization: Junction-Local SECRET` from a loopback peer: `junction ctl` on this machine,
/// acting as an administrator. A wrong secret, or one from another machine, is a 401.
fn local_caller(
    parts: &Parts,
    api: &Api,
    peer: Option<SocketAddr>,
) -> Result<Option<Caller>, ApiError> {
    let Some(offered) = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix(local_credential::SCHEME))
        .map(str::trim)
    else {
        return Ok(None);
    };
    let loopback = peer.is_some_and(|p| p.ip().is_loopback());
    match &api.node.local_credential {
        Some(secret) if loopback && local_credential::matches(secret, offered) => {
            Ok(Some(Caller {
                name: LOCAL_CALLER.into(),
                tags: vec!["administrator".into()],
                local: true,
            }))
        }
        _ => Err(ApiError::unauthorized("Not_Authorized")),
    }
}

/// `Authorization: Basic base64(user:password)`.
fn basic_credentials(parts: &Parts) -> Option<(String, String)> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}
