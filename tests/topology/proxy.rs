//! A TCP proxy the tests can cut and restore, standing between a service and one of its
//! dependencies (PostgreSQL, Redis, RabbitMQ) to play an outage without stopping the machine's
//! shared server.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub struct FaultProxy {
    /// The address to give the service instead of the dependency's.
    pub addr: SocketAddr,
    target: SocketAddr,
    up: watch::Sender<bool>,
    accept: Mutex<Option<JoinHandle<()>>>,
}

impl FaultProxy {
    /// Forwards connections to `target` until [`cut`](Self::cut).
    pub async fn start(target: SocketAddr) -> Arc<Self> {
        let listener = listen("127.0.0.1:0".parse().unwrap());
        let addr = listener.local_addr().unwrap();
        let (up, _) = watch::channel(true);
        let proxy = Arc::new(Self {
            addr,
            target,
            up,
            accept: Mutex::new(None),
        });
        proxy.serve(listener);
        proxy
    }

    /// The outage starts, as a crashed server: open connections are closed and the port
    /// refuses new ones.
    pub fn cut(&self) {
        self.up.send_replace(false);
        if let Some(accept) = self.accept.lock().unwrap().take() {
            accept.abort();
        }
    }

    /// The dependency is back on the same address.
    pub fn restore(&self) {
        self.up.send_replace(true);
        self.serve(listen(self.addr));
    }

    fn serve(&self, listener: TcpListener) {
        let target = self.target;
        let up = self.up.subscribe();
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(forward(client, target, up.clone()));
            }
        });
        *self.accept.lock().unwrap() = Some(accept);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.cut();
    }
}

/// A listener that can take its port back right after the previous one closed.
fn listen(addr: SocketAddr) -> TcpListener {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_reuseaddr(true).unwrap();
    socket.bind(addr).unwrap();
    socket.listen(1024).unwrap()
}

async fn forward(mut client: TcpStream, target: SocketAddr, mut up: watch::Receiver<bool>) {
    let Ok(mut server) = TcpStream::connect(target).await else {
        return;
    };
    tokio::select! {
        _ = copy_bidirectional(&mut client, &mut server) => {}
        _ = up.wait_for(|up| !*up) => {}
    }
}
