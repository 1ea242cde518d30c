//! A served control plane (the API server only) and the real tools pointed at it through a
//! kubeconfig, each test in its own HOME so runs never share state.

use tributary_e2e::apiserver::Served;
use tributary_e2e::{kubeconfig, FakeApiServer};

pub(crate) use crate::support::tools::{row, succeeded, tool, Tools};

/// The control plane of one test.
pub(crate) struct Cluster {
    pub(crate) server: FakeApiServer,
    pub(crate) client: kube::Client,
    /// Serving for as long as the test holds the cluster.
    _served: Served,
    pub(crate) home: tempfile::TempDir,
    tools: Tools,
}

impl std::ops::Deref for Cluster {
    type Target = Tools;

    fn deref(&self) -> &Tools {
        &self.tools
    }
}

impl Cluster {
    /// Serves a fresh API server with namespace `ns` and writes the kubeconfig.
    pub(crate) async fn start(ns: &str) -> Cluster {
        let server = FakeApiServer::new();
        server.create_namespace(ns);
        let served = server.serve().await.expect("serve the API");
        let home = tempfile::tempdir().expect("temp HOME");
        let path = home.path().join("kubeconfig");
        let admin = kubeconfig::Credentials::Token(server.admin_token());
        kubeconfig::write(&path, &served.endpoint(), ns, &admin).expect("kubeconfig");
        let client = server.client(ns);
        let tools = Tools {
            kubeconfig: path,
            home: home.path().to_owned(),
        };
        Cluster {
            server,
            client,
            _served: served,
            home,
            tools,
        }
    }
}
