//! `mx-hickory-resolver DOMAIN`: one MX lookup through hickory-resolver on a
//! tokio current-thread runtime, servers from DNSRESOLVER (`ip:port`, one),
//! as rgdns's `lookup mx DOMAIN` does it; printed `PREF HOST` per line.

use std::net::SocketAddr;

use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::Resolver;

fn main() {
    let domain = std::env::args().nth(1).unwrap_or_default();
    let server: SocketAddr = std::env::var("DNSRESOLVER")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| "127.0.0.1:53".parse().unwrap());
    let mut udp = ConnectionConfig::udp();
    udp.port = server.port();
    let mut tcp = ConnectionConfig::tcp();
    tcp.port = server.port();
    let ns = NameServerConfig::new(server.ip(), true, vec![udp, tcp]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .unwrap();
    let code = rt.block_on(async {
        let r = Resolver::builder_with_config(
            ResolverConfig::from_name_servers(vec![ns]),
            TokioRuntimeProvider::default(),
        )
        .build()
        .unwrap();
        match r.mx_lookup(format!("{domain}.")).await {
            Ok(mx) => {
                for m in mx.answers() {
                    println!("{:?}", m.data);
                }
                0
            }
            Err(e) => {
                println!("error {e}");
                111
            }
        }
    });
    std::process::exit(code);
}
