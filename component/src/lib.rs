//! kiln as a Spin / WASI-HTTP component: routes requests to the Pyroscope API
//! handlers and keeps its data in wasi:keyvalue. Everything else is the core.

mod api;
mod config;
mod connect;
mod grpc;
mod http;
mod ingest;
mod kv;
mod render;
mod tenant;
mod ui;

use spin_sdk::http::{IncomingRequest, ResponseOutparam};
use spin_sdk::http_component;

use crate::connect::{Call, Code, ConnectError, MAX_MESSAGE_BYTES};
use crate::http::{BodyError, Reply, RequestHead, read_body};

#[http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    route(req).await.send(out).await;
}

async fn route(req: IncomingRequest) -> Reply {
    let head = RequestHead::of(&req);
    if head.path == "/ready" {
        return Reply::new(200).header("content-type", "text/plain; charset=utf-8").body("ready\n");
    }
    if head.path == "/ingest" || head.path == "/pyroscope/ingest" {
        return ingest::handle(req, &head).await;
    }
    if api::is_connect_method(&head.path) {
        let call = match Call::accept(&head) {
            Ok(call) => call,
            Err(reply) => return reply,
        };
        let body = match read_body(req, MAX_MESSAGE_BYTES).await {
            Ok(body) => body,
            Err(BodyError::TooLarge) => {
                return call.error(ConnectError::new(
                    Code::ResourceExhausted,
                    format!("message size is larger than configured max {MAX_MESSAGE_BYTES}"),
                ));
            }
            Err(BodyError::Read(e)) => return call.error(ConnectError::invalid(format!("read request body: {e}"))),
        };
        return api::call(&head, &call, &body);
    }
    if render::is_legacy_query(&head.path) {
        return render::handle(&head);
    }
    if let Some(reply) = ui::serve(&head) {
        return reply;
    }
    Reply::new(404).header("content-type", "text/plain; charset=utf-8").body("404 page not found\n")
}
