//! The benchmark's baseline: an actix-web server whose one handler returns a
//! fixed JSON body. It runs on the same kind of runtime and with the same
//! worker count as `twauth serve`, so the gap to twauth is what a credential
//! check costs.
//!
//! Usage: `bench-baseline ADDRESS WORKERS`; prints `listening on http://…`.

use actix_web::{App, HttpResponse, HttpServer, web};

/// A body about as long as a session check's.
const BODY: &str = r#"{"sessionID":"00000000-0000-4000-8000-000000000000","userID":"00000000-0000-4000-8000-000000000001","alias":"bench","fullName":"Bench User","expireAt":1900000000,"ip":"127.0.0.1","userAgent":"wrk","verified":true,"roles":["user"],"groups":["public"]}"#;

async fn check() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(BODY)
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let address = args.next().unwrap_or_else(|| "127.0.0.1:0".to_owned());
    let workers: usize = args.next().and_then(|w| w.parse().ok()).unwrap_or(0);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let mut server =
            HttpServer::new(|| App::new().route("/api/auth/v2/session", web::get().to(check)))
                .bind(&address)?;
        if workers > 0 {
            server = server.workers(workers);
        }
        for addr in server.addrs() {
            println!("listening on http://{addr}");
        }
        server.run().await
    })
}
