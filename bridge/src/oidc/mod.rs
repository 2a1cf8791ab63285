//! The OpenID Connect and OAuth 2.0 endpoints.

pub mod acr;
pub mod authorize;
pub mod client;
pub mod discovery;
pub mod dpop;
pub mod grant;
pub mod logout;
pub mod outbound;
pub mod par;
pub mod params;
pub mod register;
pub mod resource;
pub mod token;
