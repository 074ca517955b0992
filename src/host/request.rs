//! The request capability: the guest pulls the request it is handling.

use std::collections::BTreeMap;

use serde::Serialize;

use super::AbiError;

/// One HTTP request as the guest sees it. Built by the caller (the HTTP front end, or
/// `pubfn run`); this module knows nothing of HTTP libraries.
#[derive(Debug, Clone, Default)]
pub struct GuestRequest {
    /// Upper-case method, e.g. `GET`.
    pub method: String,
    /// The full URL the client asked for, e.g. `https://host/acme/hello?x=1`.
    pub url: String,
    /// The path the handler's route matched, e.g. `/hello`.
    pub path: String,
    /// The raw query string, without `?`.
    pub query_string: String,
    /// Header names and raw values, in arrival order; repeated names stay repeated.
    pub headers: Vec<(String, Vec<u8>)>,
    /// Values of the route's `{parameters}`.
    pub path_params: BTreeMap<String, String>,
    /// The request body.
    pub body: Vec<u8>,
    /// The tenant's default warehouse (`pq.DW_NAME`): its first managed database, if any.
    pub warehouse: Option<String>,
    /// The client's address (`request.remote_addr`): the peer, or what a trusted proxy said
    /// the client was; empty when there is no client (a draft, `pubfn run`).
    pub remote_addr: String,
}

#[derive(Serialize)]
struct Head<'a> {
    method: &'a str,
    url: &'a str,
    path: &'a str,
    query_string: &'a str,
    headers: Vec<(&'a str, String)>,
    path_params: &'a BTreeMap<String, String>,
    warehouse: Option<&'a str>,
    remote_addr: &'a str,
}

/// `PQ_OP_REQUEST_HEAD`: the request minus its body, as JSON.
pub fn head(request: Option<&GuestRequest>) -> Result<Vec<u8>, AbiError> {
    let request = current(request)?;
    let head = Head {
        method: &request.method,
        url: &request.url,
        path: &request.path,
        query_string: &request.query_string,
        // Header values are bytes; Latin-1 maps each byte to one char and back, losslessly,
        // as WSGI does.
        headers: request
            .headers
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str(),
                    value.iter().map(|&b| char::from(b)).collect(),
                )
            })
            .collect(),
        path_params: &request.path_params,
        warehouse: request.warehouse.as_deref(),
        remote_addr: &request.remote_addr,
    };
    serde_json::to_vec(&head).map_err(|e| AbiError::new(AbiError::HOST, e.to_string()))
}

/// `PQ_OP_REQUEST_BODY`: the raw body.
pub fn body(request: Option<&GuestRequest>) -> Result<Vec<u8>, AbiError> {
    Ok(current(request)?.body.clone())
}

fn current(request: Option<&GuestRequest>) -> Result<&GuestRequest, AbiError> {
    request.ok_or_else(|| AbiError::new(AbiError::STATE, "no request is being handled"))
}
