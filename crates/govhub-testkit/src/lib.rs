//! Test support: [`spawn_app`] starts the real govhub server on a free loopback port
//! over a fresh store — a new SQLite file in a temporary directory, or a new
//! PostgreSQL database when `GOVHUB_TEST_POSTGRES_URL` is set — and returns a client
//! pointed at it. [`backend_tests!`] runs one scenario against both backends.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use govhub_core::authz::Principal;
use govhub_core::clock::{Clock, SystemClock};
use govhub_core::input::{NewUser, UserInput};
use govhub_core::service::{Ctx, Hub, HubSettings};
use govhub_core::store::Store;
use govhub_server::state::{AppState, ServerConfig};
use serde_json::Value;
use std::sync::Arc;

pub use govhub_core::store::Backend;

/// The environment variable naming a PostgreSQL server for tests.
pub const PG_ENV: &str = "GOVHUB_TEST_POSTGRES_URL";

/// A running server and a client for it.
pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub hub: Hub,
    pub backend: Backend,
    pub database_url: String,
    /// The first node's temporary directory (the SQLite file); other nodes have none.
    _dir: Option<tempfile::TempDir>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// The PostgreSQL URL for tests, if configured.
pub fn postgres_url() -> Option<String> {
    std::env::var(PG_ENV).ok().filter(|s| !s.trim().is_empty())
}

/// Create a fresh, uniquely named database on the test server; returns its URL.
pub async fn fresh_postgres_database(base_url: &str) -> String {
    let (client, conn) =
        tokio_postgres::connect(base_url, tokio_postgres::NoTls).await.expect("connect to test PostgreSQL");
    tokio::spawn(conn);
    let name = format!("govhub_t_{}", uuid_like());
    client.batch_execute(&format!("CREATE DATABASE {name}")).await.expect("create test database");
    replace_db_name(base_url, &name)
}

fn uuid_like() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let t = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("{}_{}_{}", std::process::id(), t % 1_000_000_000_000, n)
}

/// Swap the database name in a `postgres://user@host:port/db?params` URL.
pub fn replace_db_name(url: &str, name: &str) -> String {
    let (head, query) = match url.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (url, None),
    };
    let scheme_end = head.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match head[scheme_end..].find('/') {
        Some(i) => &head[..scheme_end + i],
        None => head,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

/// Start the server over a fresh store of the given backend.
pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, Arc::new(SystemClock), ServerConfig::default()).await
}

/// Start the server with a chosen clock and server settings.
pub async fn spawn_app_with(backend: Backend, clock: Arc<dyn Clock>, config: ServerConfig) -> TestApp {
    spawn_app_configured(backend, clock, config, HubSettings::default()).await
}

/// Start the server with a chosen clock, server settings and hub settings (e.g. a
/// webhook policy with short backoff that allows loopback receivers).
pub async fn spawn_app_configured(
    backend: Backend,
    clock: Arc<dyn Clock>,
    config: ServerConfig,
    settings: HubSettings,
) -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let database_url = match backend {
        Backend::Sqlite => format!("sqlite://{}", dir.path().join("govhub.db").display()),
        Backend::Postgres => {
            let base = postgres_url().expect("GOVHUB_TEST_POSTGRES_URL must be set for PostgreSQL tests");
            fresh_postgres_database(&base).await
        }
    };
    let hub = hub_on(&database_url, clock, settings).await;
    // The e-licence root: a fresh key; organisation keys wrapped with few PBKDF2 rounds
    // (the minimum govhub accepts) so that tests stay fast.
    let root_key = govhub_crypto::sm2keys::Sm2PrivateKey::generate().expect("root key");
    let hub = hub.attach_seal_authority(root_key, b"testkit-wrap-secret", 10_000).await.expect("seal authority");
    serve(hub, config, backend, database_url, Some(dir)).await
}

/// A hub over the store at `database_url`, with an ephemeral platform key (audit
/// checkpoints are signed as in production).
async fn hub_on(database_url: &str, clock: Arc<dyn Clock>, settings: HubSettings) -> Hub {
    let store: Arc<dyn Store> = govhub_store::open(database_url).await.expect("open store");
    let signer = govhub_core::signer::Sm2Signer::ephemeral().expect("platform key");
    Hub::new(store, clock, settings).with_signer(Arc::new(signer))
}

async fn serve(
    hub: Hub,
    config: ServerConfig,
    backend: Backend,
    database_url: String,
    dir: Option<tempfile::TempDir>,
) -> TestApp {
    let state = AppState::new(hub.clone(), config).expect("templates");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = govhub_server::serve(listener, state, async {
            let _ = rx.await;
        })
        .await;
    });
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .expect("client");
    TestApp { base: format!("http://{addr}"), client, hub, backend, database_url, _dir: dir, shutdown: Some(tx) }
}

impl TestApp {
    /// A second govhub node serving the same store (as two servers behind a load
    /// balancer share one PostgreSQL, or one SQLite file). Keep `self` alive meanwhile.
    pub async fn another_node(&self) -> TestApp {
        let hub = hub_on(&self.database_url, Arc::new(SystemClock), HubSettings::default()).await;
        serve(hub, ServerConfig::default(), self.backend, self.database_url.clone(), None).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Create a user directly through the service (as the CLI does).
    pub async fn create_user(&self, username: &str, password: &str, role: &str, org: Option<&str>) {
        let input = UserInput {
            username: username.into(),
            password: password.into(),
            role: role.into(),
            org: org.map(Into::into),
            display_name: None,
            subject_id: None,
        };
        self.hub
            .create_user(&Principal::system(), NewUser::try_from(input).expect("valid user"), &Ctx::default())
            .await
            .expect("create user");
    }

    /// Sign in through the API and return the bearer token.
    pub async fn token(&self, username: &str, password: &str) -> String {
        let r = self
            .client
            .post(self.url("/api/v1/auth/token"))
            .json(&serde_json::json!({"username": username, "password": password}))
            .send()
            .await
            .expect("request");
        assert_eq!(r.status(), 201, "sign-in of {username} failed");
        let v: Value = r.json().await.expect("json");
        v["token"].as_str().expect("token").to_string()
    }

    /// A platform admin `root` and its token.
    pub async fn admin_token(&self) -> String {
        self.create_user("root", "root-password-1", "platform-admin", None).await;
        self.token("root", "root-password-1").await
    }

    pub async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        let r = self.client.get(self.url(path)).bearer_auth(token).send().await.expect("request");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn post(&self, path: &str, token: &str, body: &Value) -> (u16, Value) {
        let r = self.client.post(self.url(path)).bearer_auth(token).json(body).send().await.expect("request");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn put(&self, path: &str, token: &str, body: &Value) -> (u16, Value) {
        let r = self.client.put(self.url(path)).bearer_auth(token).json(body).send().await.expect("request");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }
}

/// Run each named scenario `async fn name(app: TestApp)` against SQLite, and against
/// PostgreSQL when `GOVHUB_TEST_POSTGRES_URL` is set (saying loudly when it is not).
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let app = $crate::spawn_app($crate::Backend::Sqlite).await;
                    super::$name(app).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if $crate::postgres_url().is_none() {
                        eprintln!("PostgreSQL half SKIPPED for {}: set {}", stringify!($name), $crate::PG_ENV);
                        return;
                    }
                    let app = $crate::spawn_app($crate::Backend::Postgres).await;
                    super::$name(app).await;
                }
            )*
        }
    };
}

/// `async fn name(backend: Backend)` scenarios run on both stores, as the tests
/// `on_sqlite::name` and `on_postgres::name` (skipped, loudly, without PostgreSQL): for
/// scenarios that start the app themselves (an injected clock, other settings).
#[macro_export]
macro_rules! per_backend_tests {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::Backend::Sqlite).await;
                }
            )*
        }
        mod on_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if $crate::postgres_url().is_none() {
                        eprintln!("PostgreSQL half SKIPPED for {}: set {}", stringify!($name), $crate::PG_ENV);
                        return;
                    }
                    super::$name($crate::Backend::Postgres).await;
                }
            )*
        }
    };
}

#[cfg(test)]
mod tests {
    use super::replace_db_name;

    #[test]
    fn replaces_database_names() {
        assert_eq!(replace_db_name("postgres://u@127.0.0.1:5432/postgres", "x"), "postgres://u@127.0.0.1:5432/x");
        assert_eq!(replace_db_name("postgres://u@h:1/db?sslmode=disable", "x"), "postgres://u@h:1/x?sslmode=disable");
        assert_eq!(replace_db_name("postgres://u@h:1", "x"), "postgres://u@h:1/x");
    }
}
