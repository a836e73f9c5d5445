use spin_sdk::http::{IntoResponse, Request, Response};
use spin_sdk::http_component;

#[http_component]
fn handle(req: Request) -> Result<impl IntoResponse, std::convert::Infallible> {
    let _ = req;
    Ok(Response::builder().status(200).body("ready").build())
}
