//! The public port's service: a plain `GET /sessions/whoami` whose answer is cached is answered here,
//! before the router; every other request goes to the router as before.
//!
//! Under load, the router's layers (routing, matched path and connection-info extensions, panic
//! guard, the common middleware's boxed futures) cost more than a cached answer itself: about a
//! third of the server's time per whoami, measured with `perf` in the benchmark's whoami section.
//! The answer is the one the router would give, byte for byte: same handler code
//! ([`sessions::cached_answer`]), same common headers, same metrics and log line. Anything this path
//! does not answer in exactly that way — another method, a query, CORS, pending migrations, no
//! token, a cache miss — takes the router.

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use axum::http::Method;
use axum::response::Response;
use axum::serve::IncomingStream;
use futures_util::future::Either;
use tower::Service;

use sallyport_core::time_fmt;

use super::sessions;
use crate::state::AppState;

/// The route label whoami requests carry in the metrics and logs.
const ROUTE: &str = "/sessions/whoami";

/// Makes one [`PublicService`] per accepted connection (what `into_make_service_with_connect_info`
/// did for the bare router).
#[derive(Clone)]
pub struct MakePublicService {
    app: AppState,
    router: Router,
    /// CORS adds headers (`Vary`, `Access-Control-*`) that only its layer in the router knows.
    fast: bool,
}

impl MakePublicService {
    pub fn new(app: AppState, router: Router) -> MakePublicService {
        let fast = app.settings.cors.is_none();
        MakePublicService { app, router, fast }
    }
}

impl<'a> Service<IncomingStream<'a, tokio::net::TcpListener>> for MakePublicService {
    type Response = PublicService;
    type Error = Infallible;
    type Future = Ready<Result<PublicService, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, stream: IncomingStream<'a, tokio::net::TcpListener>) -> Self::Future {
        ready(Ok(PublicService {
            app: self.app.clone(),
            router: self.router.clone(),
            fast: self.fast,
            remote: *stream.remote_addr(),
        }))
    }
}

/// One connection's service.
#[derive(Clone)]
pub struct PublicService {
    app: AppState,
    router: Router,
    fast: bool,
    remote: SocketAddr,
}

impl Service<Request> for PublicService {
    type Response = Response;
    type Error = Infallible;
    type Future = Either<Ready<Result<Response, Infallible>>, <Router as Service<Request>>::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Service::<Request>::poll_ready(&mut self.router, cx)
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        if self.fast
            && let Some(res) = cached_whoami(&self.app, &req)
        {
            return Either::Left(ready(Ok(res)));
        }
        req.extensions_mut().insert(ConnectInfo(self.remote));
        Either::Right(self.router.call(req))
    }
}

/// The router's answer to `req` when it is a plain whoami of a cached session, else `None`.
fn cached_whoami(app: &AppState, req: &Request) -> Option<Response> {
    let uri = req.uri();
    if req.method() != Method::GET || uri.path() != ROUTE || uri.query().is_some() {
        return None;
    }
    if !app.migrations_applied.load(Ordering::Relaxed) {
        return None;
    }
    let started = Instant::now();
    let digest = sessions::presented_digest(app, req.headers())?;
    let generation = app.store.read_generation();
    let mut res = sessions::cached_answer(app, &digest, generation, time_fmt::now())?;
    crate::router::every_response_headers(&mut res, true, true);
    crate::router::account(ROUTE, "GET", 200, started.elapsed().as_secs_f64(), None);
    Some(res)
}
