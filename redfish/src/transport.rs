//! The nv-redfish transport stack for one BMC:
//! `Counted<ConcurrencyLimitedBmc<HttpBmc<Client>>>`.
//!
//! nv-redfish has no request hook, so [`Counted`] is a decorator that
//! implements its `Bmc` trait and counts every request before forwarding
//! (one trait call is one HTTP request: the client is built without a retry
//! policy and without the ETag cache, so a poll always reaches the BMC and a
//! state is never served stale).

use nv_redfish::bmc_http::reqwest::{BmcError, Client};
use nv_redfish::bmc_http::{BmcCredentials, CacheSettings, ConcurrencyLimitedBmc, HttpBmc};
use nv_redfish::core::query::ExpandQuery;
use nv_redfish::core::{
    Action, Bmc, BoxTryStream, EntityTypeRef, Expandable, FilterQuery, HttpPushUriUpdateRequest,
    ModificationResponse, MultipartUpdateRequest, ODataETag, ODataId, Repair, RepairError,
    SessionCreateResponse, StreamEvent, UploadReader,
};
use serde::{Deserialize, Serialize};
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

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
}

/// The concrete stack every Redfish driver uses.
pub type Stack = Counted<ConcurrencyLimitedBmc<HttpBmc<Client>>>;

/// Builds the stack for `endpoint` with at most `max_in_flight` concurrent
/// requests to this BMC.
pub fn build_stack(
    client: reqwest::Client,
    endpoint: url::Url,
    max_in_flight: NonZeroUsize,
    counter: Arc<RequestCounter>,
) -> Stack {
    let http = HttpBmc::new(
        Client::with_client(client),
        endpoint,
        BmcCredentials::anonymous(),
        // No ETag cache: a poll must always read the BMC's current state.
        CacheSettings::with_capacity(0),
    );
    Counted {
        inner: http.with_request_concurrency_limit(max_in_flight),
        counter,
    }
}

impl Stack {
    /// Replaces the credentials of later requests (session token or Basic).
    pub fn set_credentials(&self, credentials: BmcCredentials) {
        self.inner.set_credentials(credentials);
    }
}

impl<B: Bmc<Error = BmcError>> Bmc for Counted<B> {
    type Error = BmcError;

    async fn expand<T: Expandable>(
        &self,
        id: &ODataId,
        query: ExpandQuery,
    ) -> Result<Arc<T>, BmcError> {
        self.counter.get();
        self.inner.expand(id, query).await
    }

    async fn get<T: EntityTypeRef + for<'de> Deserialize<'de> + 'static>(
        &self,
        id: &ODataId,
    ) -> Result<Arc<T>, BmcError> {
        self.counter.get();
        self.inner.get(id).await
    }

    async fn filter<T: EntityTypeRef + for<'de> Deserialize<'de> + 'static>(
        &self,
        id: &ODataId,
        query: FilterQuery,
    ) -> Result<Arc<T>, BmcError> {
        self.counter.get();
        self.inner.filter(id, query).await
    }

    async fn get_repaired<T: EntityTypeRef + for<'de> Deserialize<'de> + 'static>(
        &self,
        id: &ODataId,
        repair: &impl Repair,
    ) -> Result<Arc<T>, RepairError<BmcError>> {
        self.counter.get();
        self.inner.get_repaired(id, repair).await
    }

    async fn expand_repaired<T: Expandable>(
        &self,
        id: &ODataId,
        query: ExpandQuery,
        repair: &impl Repair,
    ) -> Result<Arc<T>, RepairError<BmcError>> {
        self.counter.get();
        self.inner.expand_repaired(id, query, repair).await
    }

    async fn filter_repaired<T: EntityTypeRef + for<'de> Deserialize<'de> + 'static>(
        &self,
        id: &ODataId,
        query: FilterQuery,
        repair: &impl Repair,
    ) -> Result<Arc<T>, RepairError<BmcError>> {
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
        self.counter.patch();
        self.inner.update(id, etag, update).await
    }

    async fn delete<R>(&self, id: &ODataId) -> Result<ModificationResponse<R>, BmcError>
    where
        R: EntityTypeRef + for<'de> Deserialize<'de>,
    {
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
        self.counter.post();
        self.inner.action(action, params).await
    }

    async fn poll<R: Send + Sync + Sized + for<'de> Deserialize<'de>>(
        &self,
        uri: &ODataId,
    ) -> Result<ModificationResponse<R>, BmcError> {
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
        self.counter.post();
        self.inner.http_push_uri_update(uri, request).await
    }

    async fn stream<T>(&self, uri: &str) -> Result<BoxTryStream<T, BmcError>, BmcError>
    where
        T: Sized + for<'de> Deserialize<'de> + Send + 'static,
    {
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
        self.counter.get();
        self.inner.stream_events(uri, last_event_id).await
    }
}
