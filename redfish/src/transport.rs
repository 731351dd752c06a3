//! The nv-redfish transport stack for one BMC: `Counted<HttpBmc<Client>>`.
//!
//! nv-redfish has no request hook, so [`Counted`] is a decorator that
//! implements its `Bmc` trait, holds the per-BMC in-flight limit and counts
//! every request before forwarding (one trait call is one HTTP request: the
//! client is built without a retry policy and without the ETag cache, so a
//! poll always reaches the BMC and a state is never served stale).
//!
//! Reads of plain JSON documents ([`Counted::read_document`]) go over the
//! same reqwest client, limit, counter and credentials but skip nv-redfish's
//! typed decoding: it parses a body into a `serde_json::Value` and then
//! rebuilds that tree once more through `serde_path_to_error` into its `Raw`
//! type, which cost ~6 % of the CPU at fleet scale for a `Value` firmflow
//! wanted in the first place.

use nv_redfish::bmc_http::reqwest::{BmcError, Client};
use nv_redfish::bmc_http::{BmcCredentials, CacheSettings, HttpBmc};
use nv_redfish::core::query::ExpandQuery;
use nv_redfish::core::{
    Action, Bmc, BoxTryStream, EntityTypeRef, Expandable, FilterQuery, HttpPushUriUpdateRequest,
    ModificationResponse, MultipartUpdateRequest, ODataETag, ODataId, Repair, RepairError,
    SessionCreateResponse, StreamEvent, UploadReader,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use tokio::sync::{Semaphore, SemaphorePermit};

/// Requests sent to one BMC, by kind.
#[derive(Debug, Default)]
pub struct RequestCounter {
    gets: AtomicU64,
    posts: AtomicU64,
    deletes: AtomicU64,
    patches: AtomicU64,
}

/// A snapshot of a [`RequestCounter`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RequestCounts {
    /// GETs (reads, polls).
    pub gets: u64,
    /// POSTs (login, actions, uploads).
    pub posts: u64,
    /// DELETEs (logout, job deletion).
    pub deletes: u64,
    /// PATCHes.
    pub patches: u64,
}

impl RequestCounts {
    /// All requests.
    pub fn total(&self) -> u64 {
        self.gets + self.posts + self.deletes + self.patches
    }
}

impl RequestCounter {
    /// The counts so far.
    pub fn snapshot(&self) -> RequestCounts {
        RequestCounts {
            gets: self.gets.load(Ordering::Relaxed),
            posts: self.posts.load(Ordering::Relaxed),
            deletes: self.deletes.load(Ordering::Relaxed),
            patches: self.patches.load(Ordering::Relaxed),
        }
    }
    pub(crate) fn get(&self) {
        self.gets.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn post(&self) {
        self.posts.fetch_add(1, Ordering::Relaxed);
    }
    fn delete(&self) {
        self.deletes.fetch_add(1, Ordering::Relaxed);
    }
    fn patch(&self) {
        self.patches.fetch_add(1, Ordering::Relaxed);
    }
}

/// Counts requests, then forwards to the wrapped BMC.
pub struct Counted<B> {
    inner: B,
    counter: Arc<RequestCounter>,
    /// At most this many requests in flight to this BMC, every kind together.
    in_flight: Semaphore,
    /// For [`Counted::read_document`]: the client, the BMC's base URL and
    /// the credentials nv-redfish was last given.
    http: reqwest::Client,
    endpoint: url::Url,
    credentials: RwLock<BmcCredentials>,
}

/// The stack the Redfish client talks through.
pub type Stack = Counted<HttpBmc<Client>>;

/// Builds the stack for `endpoint` with at most `max_in_flight` concurrent
/// requests to this BMC.
pub fn build_stack(
    client: reqwest::Client,
    endpoint: url::Url,
    max_in_flight: NonZeroUsize,
    counter: Arc<RequestCounter>,
) -> Stack {
    let http = HttpBmc::new(
        Client::with_client(client.clone()),
        endpoint.clone(),
        BmcCredentials::anonymous(),
        // No ETag cache: a poll must always read the BMC's current state.
        CacheSettings::with_capacity(0),
    );
    Counted {
        inner: http,
        counter,
        in_flight: Semaphore::new(max_in_flight.get().min(Semaphore::MAX_PERMITS)),
        http: client,
        endpoint,
        credentials: RwLock::new(BmcCredentials::anonymous()),
    }
}

impl Stack {
    /// Replaces the credentials of later requests (session token or Basic).
    pub fn set_credentials(&self, credentials: BmcCredentials) {
        if let Ok(mut c) = self.credentials.write() {
            *c = credentials.clone();
        }
        self.inner.set_credentials(credentials);
    }

    /// GETs the document at `id` (an absolute path on this BMC, possibly
    /// with a query) as JSON, with `query` appended (`$expand=…`), parsed
    /// once. Errors are nv-redfish's, as its own GET would give them: a
    /// non-2xx status is `InvalidResponse` with the body's text, a body that
    /// is not JSON is `DecodeError`, a transport failure `ReqwestError`.
    pub async fn read_document(&self, id: &str, query: Option<&str>) -> Result<Value, BmcError> {
        let _permit = self.permit().await;
        self.counter.get();
        let url = self.url_of(id, query);
        let credentials = self
            .credentials
            .read()
            .map(|c| c.clone())
            .unwrap_or_else(|_| BmcCredentials::anonymous());
        let request = match credentials {
            BmcCredentials::UsernamePassword { username, password } => {
                self.http.get(url).basic_auth(username, password)
            }
            BmcCredentials::Token { token } => self.http.get(url).header("X-Auth-Token", token),
            BmcCredentials::Anonymous => self.http.get(url),
        };
        let response = request.send().await.map_err(BmcError::ReqwestError)?;
        if !response.status().is_success() {
            return Err(BmcError::InvalidResponse {
                url: response.url().clone(),
                status: response.status(),
                text: response.text().await.unwrap_or_else(|_| "<no data>".into()),
            });
        }
        let body = response.bytes().await.map_err(BmcError::ReqwestError)?;
        serde_json::from_slice(&body).map_err(BmcError::DecodeError)
    }

    /// The URL of `id` on this BMC's origin, as nv-redfish builds it: the
    /// path replaces the base URL's, a query in `id` is kept and `query`
    /// is appended to it.
    fn url_of(&self, id: &str, query: Option<&str>) -> url::Url {
        let (path, own) = id.split_once('?').map_or((id, None), |(p, q)| (p, Some(q)));
        let mut url = self.endpoint.clone();
        url.set_path(path);
        let combined = match (own.filter(|q| !q.is_empty()), query) {
            (Some(a), Some(b)) => Some(format!("{a}&{b}")),
            (Some(a), None) => Some(a.to_string()),
            (None, Some(b)) => Some(b.to_string()),
            (None, None) => None,
        };
        url.set_query(combined.as_deref());
        url
    }
}

impl<B> Counted<B> {
    /// A place in this BMC's in-flight limit (the semaphore is never
    /// closed; were it, the request goes without one rather than fail).
    async fn permit(&self) -> Option<SemaphorePermit<'_>> {
        self.in_flight.acquire().await.ok()
    }
}

impl<B: Bmc<Error = BmcError>> Bmc for Counted<B> {
    type Error = BmcError;

    async fn expand<T: Expandable>(
        &self,
        id: &ODataId,
        query: ExpandQuery,
    ) -> Result<Arc<T>, BmcError> {
        let _permit = self.permit().await;
        self.counter.get();
        self.inner.expand(id, query).await
    }

    async fn get<T: EntityTypeRef + for<'de> Deserialize<'de> + 'static>(
        &self,
        id: &ODataId,
    ) -> Result<Arc<T>, BmcError> {
        let _permit = self.permit().await;
        self.counter.get();
        self.inner.get(id).await
    }

    async fn filter<T: EntityTypeRef + for<'de> Deserialize<'de> + 'static>(
        &self,
        id: &ODataId,
        query: FilterQuery,
    ) -> Result<Arc<T>, BmcError> {
        let _permit = self.permit().await;
        self.counter.get();
        self.inner.filter(id, query).await
    }

    async fn get_repaired<T: EntityTypeRef + for<'de> Deserialize<'de> + 'static>(
        &self,
        id: &ODataId,
        repair: &impl Repair,
    ) -> Result<Arc<T>, RepairError<BmcError>> {
        let _permit = self.permit().await;
        self.counter.get();
        self.inner.get_repaired(id, repair).await
    }

    async fn expand_repaired<T: Expandable>(
        &self,
        id: &ODataId,
        query: ExpandQuery,
        repair: &impl Repair,
    ) -> Result<Arc<T>, RepairError<BmcError>> {
        let _permit = self.permit().await;
        self.counter.get();
        self.inner.expand_repaired(id, query, repair).await
    }

    async fn filter_repaired<T: EntityTypeRef + for<'de> Deserialize<'de> + 'static>(
        &self,
        id: &ODataId,
        query: FilterQuery,
        repair: &impl Repair,
    ) -> Result<Arc<T>, RepairError<BmcError>> {
        let _permit = self.permit().await;
        self.counter.get();
        self.inner.filter_repaired(id, query, repair).await
    }

    async fn create<V, R>(
        &self,
        id: &ODataId,
        query: &V,
    ) -> Result<ModificationResponse<R>, BmcError>
    where
        V: Send + Sync + Serialize,
        R: Send + Sync + for<'de> Deserialize<'de>,
    {
        let _permit = self.permit().await;
        self.counter.post();
        self.inner.create(id, query).await
    }

    async fn create_session<V, R>(
        &self,
        id: &ODataId,
        query: &V,
    ) -> Result<SessionCreateResponse<R>, BmcError>
    where
        V: Send + Sync + Serialize,
        R: Send + Sync + for<'de> Deserialize<'de>,
    {
        let _permit = self.permit().await;
        self.counter.post();
        self.inner.create_session(id, query).await
    }

    async fn update<V, R>(
        &self,
        id: &ODataId,
        etag: Option<&ODataETag>,
        update: &V,
    ) -> Result<ModificationResponse<R>, BmcError>
    where
        V: Sync + Send + Serialize,
        R: Send + Sync + Sized + for<'de> Deserialize<'de>,
    {
        let _permit = self.permit().await;
        self.counter.patch();
        self.inner.update(id, etag, update).await
    }

    async fn delete<R>(&self, id: &ODataId) -> Result<ModificationResponse<R>, BmcError>
    where
        R: EntityTypeRef + for<'de> Deserialize<'de>,
    {
        let _permit = self.permit().await;
        self.counter.delete();
        self.inner.delete(id).await
    }

    async fn action<T, R>(
        &self,
        action: &Action<T, R>,
        params: &T,
    ) -> Result<ModificationResponse<R>, BmcError>
    where
        T: Send + Sync + Serialize,
        R: Send + Sync + Sized + for<'de> Deserialize<'de>,
    {
        let _permit = self.permit().await;
        self.counter.post();
        self.inner.action(action, params).await
    }

    async fn poll<R: Send + Sync + Sized + for<'de> Deserialize<'de>>(
        &self,
        uri: &ODataId,
    ) -> Result<ModificationResponse<R>, BmcError> {
        let _permit = self.permit().await;
        self.counter.get();
        self.inner.poll(uri).await
    }

    async fn multipart_update<U, V, R>(
        &self,
        uri: &str,
        request: MultipartUpdateRequest<'_, U, V>,
    ) -> Result<ModificationResponse<R>, BmcError>
    where
        U: UploadReader,
        R: Send + Sync + for<'de> Deserialize<'de>,
        V: Send + Sync + Serialize,
    {
        let _permit = self.permit().await;
        self.counter.post();
        self.inner.multipart_update(uri, request).await
    }

    async fn http_push_uri_update<U, R>(
        &self,
        uri: &str,
        request: HttpPushUriUpdateRequest<U>,
    ) -> Result<ModificationResponse<R>, BmcError>
    where
        U: UploadReader,
        R: Send + Sync + for<'de> Deserialize<'de>,
    {
        let _permit = self.permit().await;
        self.counter.post();
        self.inner.http_push_uri_update(uri, request).await
    }

    async fn stream<T>(&self, uri: &str) -> Result<BoxTryStream<T, BmcError>, BmcError>
    where
        T: Sized + for<'de> Deserialize<'de> + Send + 'static,
    {
        let _permit = self.permit().await;
        self.counter.get();
        self.inner.stream(uri).await
    }

    async fn stream_events<T>(
        &self,
        uri: &str,
        last_event_id: Option<&str>,
    ) -> Result<BoxTryStream<StreamEvent<T>, BmcError>, BmcError>
    where
        T: Sized + for<'de> Deserialize<'de> + Send + 'static,
    {
        let _permit = self.permit().await;
        self.counter.get();
        self.inner.stream_events(uri, last_event_id).await
    }
}
