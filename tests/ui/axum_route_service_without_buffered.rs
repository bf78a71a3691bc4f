// The same mistake with `Router::route_service`: the route's bound on the
// service makes rustc name the body that cannot be replayed.
use std::time::Duration;

use axum::error_handling::HandleErrorLayer;
use axum::Router;
use http::StatusCode;
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use tower::ServiceBuilder;
use tower_backoff::BackoffRetryLayer;

fn main() {
    let upstream = ServiceBuilder::new()
        .layer(HandleErrorLayer::new(
            |err: hyper_util::client::legacy::Error| async move {
                (StatusCode::BAD_GATEWAY, err.to_string())
            },
        ))
        .layer(BackoffRetryLayer::exponential(
            Duration::from_millis(100),
            Duration::from_secs(5),
        ))
        .service(Client::builder(TokioExecutor::new()).build_http::<axum::body::Body>());
    let _app: Router = Router::new().route_service("/{*path}", upstream);
}
